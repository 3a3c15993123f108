// Replays fuzz inputs through a target's LLVMFuzzerTestOneInput in the normal
// (g++) build, so the checked-in seed corpora and every crash a fuzzer ever
// found run as CTest tests on each build:
//
//   fuzz_replay_dns tests/fuzz/corpus/dns tests/fuzz/regressions/dns
//
// Each argument is a file or a directory (read recursively, in name order).
// A missing argument, or no input at all, fails: a corpus cannot vanish
// silently. An input that crashes the target crashes this program.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

namespace fs = std::filesystem;

bool collect(const fs::path& arg, std::vector<fs::path>& files) {
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) {
    files.push_back(arg);
    return true;
  }
  if (!fs::is_directory(arg, ec))
    return false;
  std::vector<fs::path> found;
  for (const auto& entry : fs::recursive_directory_iterator(arg, ec))
    if (entry.is_regular_file() && entry.path().filename().string().front() != '.')
      found.push_back(entry.path());
  std::sort(found.begin(), found.end());
  files.insert(files.end(), found.begin(), found.end());
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    if (!collect(argv[i], files)) {
      std::fprintf(stderr, "fuzz replay: %s is neither a file nor a directory\n", argv[i]);
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "fuzz replay: no inputs\n");
    return 2;
  }
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "fuzz replay: cannot read %s\n", file.c_str());
      return 2;
    }
    // A copy of exactly the input's size, so a read past its end is caught
    // by the sanitizers (and by libFuzzer's own runs) as it would be there.
    std::vector<uint8_t> exact(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(exact.data(), exact.size());
  }
  std::printf("fuzz replay: %zu inputs ran without a crash\n", files.size());
  return 0;
}
