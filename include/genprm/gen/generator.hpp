#pragma once
// The Generator concept: what prm, rpe and search drive (docs/design.md "Engine contract").
// Models: engine::Engine (BasicEngine<Qwen2Model>), the scripted doubles of tests/cpp/, a Python
// engine in the bindings, a remote client. Torch-free.
//
//   uint64_t submit(GenerationRequest req, GenerationCallback on_done);  // returns at once
//   bool poll();            // advances the work by one step; false when nothing is left to do
//   void run_until_idle();  // polls until idle
//   void cancel(uint64_t request_id);  // a cancelled request still calls back (finish "abort")
// Callbacks run on the thread that calls poll()/run_until_idle(); they may submit new requests
// or cancel.
#include <cstdint>
#include <utility>

#include "genprm/gen/request.hpp"

namespace genprm {

/// A Generator that remembers whether its last poll() had work: a scorer batched across
/// problems (search/batch_scorer.hpp) waits until the policy has nothing left to decode.
template <typename G>
struct TrackedGenerator {
  G& inner;
  bool busy = false;  ///< the last poll() had work (true from a submit until a poll says idle)

  uint64_t submit(GenerationRequest req, GenerationCallback cb) {
    busy = true;
    return inner.submit(std::move(req), std::move(cb));
  }
  bool poll() { return busy = inner.poll(); }
  void run_until_idle() {
    while (poll()) {
    }
  }
  void cancel(uint64_t id) { inner.cancel(id); }
};

}  // namespace genprm
