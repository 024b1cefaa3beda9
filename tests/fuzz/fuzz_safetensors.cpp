// libFuzzer target: the safetensors header parser (genprm::parse_safetensors) on arbitrary bytes.
// Every input must either parse into tensors that lie inside the buffer, match their dtype x shape
// and do not overlap, or be rejected with genprm::ValueError. Anything else (crash, sanitizer
// report, another exception type, a violated invariant) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "genprm/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  genprm::SafetensorsHeader h;
  try {
    h = genprm::parse_safetensors(data, size, "fuzz.safetensors");
  } catch (const genprm::ValueError&) {
    return 0;
  }
  const uint8_t* end = data + size;
  const uint8_t* prev_end = nullptr;
  for (const genprm::TensorInfo& t : h.tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) std::abort();
      numel *= static_cast<uint64_t>(d);
    }
    if (numel * genprm::dtype_size(t.dtype) != t.nbytes) std::abort();
    if (t.data < data + h.data_start || t.data + t.nbytes > end) std::abort();
    if (t.nbytes == 0) continue;
    if (prev_end != nullptr && t.data < prev_end) std::abort();  // overlap slipped through
    prev_end = t.data + t.nbytes;
    // Touch the first and last byte: ASan reports any read outside the input.
    volatile uint8_t first = t.data[0], last = t.data[t.nbytes - 1];
    (void)first;
    (void)last;
  }
  for (const auto& [k, v] : h.metadata) {
    if (k.size() + v.size() > size) std::abort();
  }
  return 0;
}
