#pragma once
// RecordIO, the framing of Mesos's event streams: each record is its length
// in decimal, a newline, then that many bytes ("5\nhello"). Records ride in
// the chunks of a chunked HTTP body, but chunk and record boundaries are
// independent: a reader must reassemble records from arbitrary pieces.
//
// RecordIoReader is a plain value, not thread-safe. A length that is not a
// decimal number, or is larger than record_bytes_max, is an error the reader
// cannot recover from (the stream has lost its framing): error() turns true
// and next() yields nothing more.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tessera::http {

inline std::string recordio_frame(std::string_view record) {
  auto out = std::to_string(record.size());
  out.reserve(out.size() + 1 + record.size());
  out.push_back('\n');
  out.append(record);
  return out;
}

class RecordIoReader {
 public:
  static constexpr size_t default_record_bytes_max = size_t{64} << 20;

  explicit RecordIoReader(size_t record_bytes_max = default_record_bytes_max)
      : record_bytes_max_(record_bytes_max) {}

  void feed(std::string_view bytes) {
    if (error_)
      return;
    compact();
    buffer_.append(bytes);
  }

  // The next whole record, or nothing until more bytes arrive (or ever, once
  // error() is set).
  std::optional<std::string> next() {
    if (error_)
      return std::nullopt;
    if (!length_ && !read_length())
      return std::nullopt;
    if (buffer_.size() - pos_ < *length_)
      return std::nullopt;
    std::string record = buffer_.substr(pos_, *length_);
    pos_ += *length_;
    length_.reset();
    return record;
  }

  bool error() const { return error_; }

 private:
  // The digits of a length this long already exceed any sane limit.
  static constexpr size_t length_digits_max = 20;

  // Parses "<digits>\n" at pos_ into length_; false when incomplete or bad.
  bool read_length() {
    auto newline = buffer_.find('\n', pos_);
    size_t digits = (newline == std::string::npos ? buffer_.size() : newline) - pos_;
    if (digits > length_digits_max)
      return fail();
    if (newline == std::string::npos) {
      if (!all_digits(pos_, buffer_.size()))
        fail();
      return false;  // the length is still arriving
    }
    if (digits == 0 || !all_digits(pos_, newline))
      return fail();
    size_t length = 0;
    for (size_t i = pos_; i < newline; ++i) {
      length = length * 10 + static_cast<size_t>(buffer_[i] - '0');
      if (length > record_bytes_max_)
        return fail();
    }
    pos_ = newline + 1;
    length_ = length;
    return true;
  }

  bool all_digits(size_t from, size_t to) const {
    for (size_t i = from; i < to; ++i)
      if (buffer_[i] < '0' || buffer_[i] > '9')
        return false;
    return true;
  }

  bool fail() {
    error_ = true;
    buffer_.clear();
    pos_ = 0;
    return false;
  }

  // Drops consumed bytes once they are the larger part of the buffer, so a
  // long stream does not grow the buffer and each byte moves O(1) times.
  void compact() {
    if (pos_ > 0 && pos_ >= buffer_.size() / 2) {
      buffer_.erase(0, pos_);
      pos_ = 0;
    }
  }

  size_t record_bytes_max_;
  std::string buffer_;
  size_t pos_ = 0;  // start of the unread part of buffer_
  std::optional<size_t> length_;
  bool error_ = false;
};

}  // namespace tessera::http
