// genprm._core engine classes: SamplingParams, outputs, and Engine (a Qwen2 model, its tokenizer
// when the model folder has one, and the scheduler, owned together). Python wrappers with the
// documented API are in python/genprm/engine.py.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/functional.h>

#include "bound.hpp"
#include "common.hpp"
#include "py_engine.hpp"
#include "genprm/model/device.hpp"

namespace genprm::bindings {

void bind_engine(py::module_& m) {
  bind_struct<SamplingParams>(m, "SamplingParams",
                              "How to sample and when to stop (logprobs: -1 none, 0 the sampled token, k > 0 also "
                              "the top k); keyword construction, defaults from C++.");
  bind_struct<EngineOptions>(m, "EngineOptions",
                             "KV cache size (kv_blocks, or kv_memory_bytes; neither: 1024 blocks), block_size, "
                             "max_batch_tokens (chunked prefill), max_running_seqs, seed, prefix_caching.");
  bind_struct<EngineStats>(m, "EngineStats", "Engine counters (Engine.stats() returns them as a dict).");

  bind_struct<TokenLogprobs>(m, "TokenLogprobs",
                             "Log-probabilities at one generated position: token, logprob, top [(id, logprob)] "
                             "(best first), tracked (one per SamplingParams.tracked_token_ids).");
  bind_struct<SampleOutput>(m, "SampleOutput", "One sample: token_ids, text, finish_reason, stop_reason, logprobs.");
  // The first sample's fields on the output itself (the whole answer when n == 1).
  auto out = bind_struct<GenerationOutput>(m, "GenerationOutput", "One request's result: its n samples.");
  for (const char* name : {"token_ids", "text", "finish_reason", "stop_reason", "logprobs"}) {
    out.def_property_readonly(name, [name](const GenerationOutput& o) -> py::object {
      GENPRM_CHECK(!o.samples.empty(), "request {} has no sample: {}", o.request_id, o.error);
      return field_value(o.samples.front(), name);
    });
  }

  py::class_<PyEngine>(m, "Engine")
      .def(py::init<const std::string&, const std::string&, const std::string&, EngineOptions,
                    const std::optional<std::string>&, bool>(),
           py::arg("model_dir"), py::arg("device"), py::arg("dtype"), py::arg("options"),
           py::arg("tokenizer_dir") = py::none(), py::arg("require_tokenizer") = false)
      .def(
          "submit",
          [](PyEngine& e, py::object prompt, const SamplingParams& params, int n, py::object on_done,
             py::object on_text) {
            GenerationRequest r;
            if (py::isinstance<py::str>(prompt)) {
              r.prompt_text = prompt.cast<std::string>();
            } else {
              r.prompt_ids = prompt.cast<std::vector<int32_t>>();
            }
            r.params = params;
            r.n = n;
            if (!on_text.is_none()) r.on_text = on_text.cast<std::function<void(int, const std::string&)>>();
            GenerationCallback cb;
            if (!on_done.is_none()) cb = on_done.cast<GenerationCallback>();
            return e.engine().submit(std::move(r), std::move(cb));
          },
          py::arg("prompt"), py::arg("params"), py::arg("n") = 1, py::arg("on_done") = py::none(),
          py::arg("on_text") = py::none())
      .def("poll", [](PyEngine& e) { return e.engine().poll(); })
      .def("run_until_idle", [](PyEngine& e) { e.engine().run_until_idle(); })
      .def("cancel", [](PyEngine& e, uint64_t id) { e.engine().cancel(id); }, py::arg("request_id"))
      .def("idle", [](PyEngine& e) { return e.engine().idle(); })
      .def("stats", [](PyEngine& e) { return fields_dict(e.engine().stats()); })
      .def_property_readonly("has_tokenizer", [](const PyEngine& e) { return e.tokenizer() != nullptr; })
      .def(
          "decode",
          [](const PyEngine& e, const std::vector<int32_t>& ids) {
            GENPRM_CHECK_ARG(e.tokenizer() != nullptr, "Engine: no tokenizer");
            return e.tokenizer()->decode(ids);
          },
          py::arg("ids"))
      .def_property_readonly("vocab_size", [](PyEngine& e) { return e.model().config().vocab_size; })
      .def_property_readonly("device", [](PyEngine& e) { return e.model().device().str(); })
      .def_property_readonly("dtype", [](PyEngine& e) { return dtype_name(e.model().dtype()); });
}

}  // namespace genprm::bindings
