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

  py::class_<TokenLogprobs>(m, "TokenLogprobs")
      .def_readonly("token", &TokenLogprobs::token)
      .def_readonly("logprob", &TokenLogprobs::logprob)
      .def_readonly("top", &TokenLogprobs::top, "top-k alternatives [(token id, logprob)], best first")
      .def_readonly("tracked", &TokenLogprobs::tracked, "one per SamplingParams.tracked_token_ids")
      .def("__repr__", [](const TokenLogprobs& t) {
        return fmt::format("TokenLogprobs(token={}, logprob={:.4f}, top={}, tracked={})", t.token, t.logprob,
                           t.top.size(), t.tracked.size());
      });

  py::class_<SampleOutput>(m, "SampleOutput")
      .def_readonly("token_ids", &SampleOutput::token_ids)
      .def_readonly("text", &SampleOutput::text)
      .def_readonly("finish_reason", &SampleOutput::finish_reason)
      .def_property_readonly("stop_reason", [](const SampleOutput& s) -> py::object {
        if (s.stop_reason.empty()) return py::none();
        return py::str(s.stop_reason);
      })
      .def_property_readonly("logprobs", [](const SampleOutput& s) -> py::object {
        if (s.logprobs.empty()) return py::none();
        return py::cast(s.logprobs);
      })
      .def("__repr__", [](const SampleOutput& s) {
        return fmt::format("SampleOutput(tokens={}, finish_reason='{}', text={}B)", s.token_ids.size(), s.finish_reason,
                           s.text.size());
      });

  auto first = [](const GenerationOutput& o) -> const SampleOutput& {
    GENPRM_CHECK(!o.samples.empty(), "request {} has no sample: {}", o.request_id, o.error);
    return o.samples.front();
  };
  py::class_<GenerationOutput>(m, "GenerationOutput")
      .def_readonly("request_id", &GenerationOutput::request_id)
      .def_readonly("prompt_ids", &GenerationOutput::prompt_ids)
      .def_readonly("cached_prompt_tokens", &GenerationOutput::cached_prompt_tokens)
      .def_readonly("samples", &GenerationOutput::samples, "the n samples, in sample order")
      .def_property_readonly("error", [](const GenerationOutput& o) -> py::object {
        if (o.error.empty()) return py::none();
        return py::str(o.error);
      })
      .def_property_readonly("token_ids", [first](const GenerationOutput& o) { return first(o).token_ids; })
      .def_property_readonly("text", [first](const GenerationOutput& o) { return first(o).text; })
      .def_property_readonly("finish_reason", [first](const GenerationOutput& o) { return first(o).finish_reason; })
      .def_property_readonly("stop_reason", [first](const GenerationOutput& o) -> py::object {
        const auto& s = first(o);
        if (s.stop_reason.empty()) return py::none();
        return py::str(s.stop_reason);
      })
      .def_property_readonly("logprobs", [first](const GenerationOutput& o) -> py::object {
        const auto& s = first(o);
        if (s.logprobs.empty()) return py::none();
        return py::cast(s.logprobs);
      })
      .def("__repr__", [](const GenerationOutput& o) {
        return fmt::format("GenerationOutput(request_id={}, prompt={} tokens, samples={}{})", o.request_id,
                           o.prompt_ids.size(), o.samples.size(), o.error.empty() ? "" : ", error=" + o.error);
      });

  py::class_<PyEngine>(m, "Engine")
      .def(py::init<const std::string&, const std::string&, const std::string&, const EngineOptions&,
                    std::optional<std::string>>(),
           py::arg("model_dir"), py::arg("device"), py::arg("dtype"), py::arg("options"),
           py::arg("tokenizer_dir") = py::none())
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
      .def_property_readonly("has_tokenizer", &PyEngine::has_tokenizer)
      .def("decode", &PyEngine::decode, py::arg("ids"))
      .def_property_readonly("vocab_size", [](PyEngine& e) { return e.model().config().vocab_size; })
      .def_property_readonly("device", [](PyEngine& e) { return e.model().device().str(); })
      .def_property_readonly("dtype", [](PyEngine& e) { return dtype_name(e.model().dtype()); });
}

}  // namespace genprm::bindings
