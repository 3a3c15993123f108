#pragma once
// Reading a fuzzer's bytes as a small structure: numbers and pieces taken
// from the front, the rest left for the last field. Running out is not an
// error: every read then gives zero or empty, so any input is a valid one.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tessera::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  uint8_t u8() {
    if (size_ == 0)
      return 0;
    uint8_t v = data_[0];
    advance(1);
    return v;
  }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }

  // Up to n bytes.
  std::string_view bytes(size_t n) {
    n = n < size_ ? n : size_;
    std::string_view out(reinterpret_cast<const char*>(data_), n);
    advance(n);
    return out;
  }
  // A piece whose length (up to length_max) is the next two bytes.
  std::string_view piece(size_t length_max) { return bytes(u16() % (length_max + 1)); }
  std::string_view rest() { return bytes(size_); }

 private:
  void advance(size_t n) {
    data_ += n;
    size_ -= n;
  }
  const uint8_t* data_;
  size_t size_;
};

}  // namespace tessera::fuzz
