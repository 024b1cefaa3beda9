// libFuzzer target: tokenizer encode -> decode round trip on arbitrary bytes.
//  - encode never fails (invalid UTF-8 becomes U+FFFD) and yields ids of the vocabulary;
//  - decode(encode(x)) == x' where x' is x with invalid UTF-8 replaced, whenever x' is NFC;
//    otherwise decode(encode(x)) is valid UTF-8 and re-encodes to the same ids;
//  - StreamDecoder chunks are valid UTF-8 and add up to decode(), for the encoded ids and for the
//    input read as arbitrary ids (which exercises incomplete and invalid byte sequences).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "genprm/tokenizer/tokenizer.hpp"

namespace {

const genprm::Tokenizer& tok() {
  static const genprm::Tokenizer t = genprm::Tokenizer::from_file(GENPRM_TEST_DATA "/qwen_tokenizer/tokenizer.json");
  return t;
}

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tokenizer: property violated: %s\n", what);
    std::abort();
  }
}

bool is_nfc(const std::string& s) {
  std::string out;
  genprm::unicode::append_nfc_utf8proc(out, s);
  return out == s;
}

void check_stream(const std::vector<int32_t>& ids, bool skip) {
  genprm::StreamDecoder sd(tok(), skip);
  std::string total;
  for (int32_t id : ids) {
    const std::string chunk = sd.push(id);
    require(genprm::unicode::is_valid_utf8(chunk), "stream chunk is valid UTF-8");
    total += chunk;
  }
  total += sd.flush();
  require(total == tok().decode(ids, skip), "stream total == decode");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tok().encode(text);
  for (int32_t id : ids) require(tok().try_id_to_token(id).has_value(), "encode yields vocabulary ids");
  const std::string decoded = tok().decode(ids);
  require(genprm::unicode::is_valid_utf8(decoded), "decode is valid UTF-8");
  const std::string fixed = genprm::unicode::utf8_lossy(text);
  if (is_nfc(fixed)) {
    require(decoded == fixed, "decode(encode(x)) == x for NFC text");
  } else {
    require(tok().encode(decoded) == ids, "encode(decode(encode(x))) == encode(x)");
  }
  check_stream(ids, false);

  // The input as raw ids (little-endian uint16 + a few high special ids).
  std::vector<int32_t> raw;
  for (size_t i = 0; i + 1 < size && raw.size() < 512; i += 2) {
    const uint32_t v = uint32_t(data[i]) | (uint32_t(data[i + 1]) << 8);
    raw.push_back(v % 7 == 0 ? int32_t(151643 + v % 30) : int32_t(v % 2048 < 256 ? v % 256 : v));
  }
  check_stream(raw, false);
  check_stream(raw, true);
  return 0;
}
