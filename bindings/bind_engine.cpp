// genprm._core engine classes: SamplingParams, outputs, and Engine (a Qwen2 model, its tokenizer
// when the model folder has one, and the scheduler, owned together). Python wrappers with the
// documented API are in python/genprm/engine.py.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/functional.h>

#include "common.hpp"
#include "py_engine.hpp"
#include "genprm/model/device.hpp"

namespace genprm::bindings {

py::dict stats_dict(const EngineStats& s) {
  py::dict d;
  d["requests_submitted"] = s.requests_submitted;
  d["requests_finished"] = s.requests_finished;
  d["prompt_tokens_submitted"] = s.prompt_tokens_submitted;
  d["prompt_tokens_computed"] = s.prompt_tokens_computed;
  d["prompt_tokens_cached"] = s.prompt_tokens_cached;
  d["tokens_computed"] = s.tokens_computed;
  d["generated_tokens"] = s.generated_tokens;
  d["preemptions"] = s.preemptions;
  d["forward_steps"] = s.forward_steps;
  d["decode_steps"] = s.decode_steps;
  d["decode_rows"] = s.decode_rows;
  d["copy_on_write"] = s.copy_on_write;
  d["evictions"] = s.evictions;
  d["max_batch_seqs"] = s.max_batch_seqs;
  d["max_batch_tokens"] = s.max_batch_tokens;
  d["mean_batch_seqs"] = s.mean_batch_seqs;
  d["mean_batch_tokens"] = s.mean_batch_tokens;
  d["blocks_total"] = s.blocks_total;
  d["block_size"] = s.block_size;
  d["blocks_in_use"] = s.blocks_in_use;
  d["blocks_free"] = s.blocks_free;
  d["blocks_cached"] = s.blocks_cached;
  d["running"] = s.running;
  d["waiting"] = s.waiting;
  d["schedule_seconds"] = s.schedule_seconds;
  d["forward_seconds"] = s.forward_seconds;
  d["sample_seconds"] = s.sample_seconds;
  return d;
}

void bind_engine(py::module_& m) {
  py::class_<SamplingParams>(m, "SamplingParams")
      .def(py::init([](float temperature, int top_k, float top_p, float min_p, float repetition_penalty,
                       int max_tokens, std::vector<std::string> stop, std::vector<int32_t> stop_token_ids,
                       bool include_stop_str_in_output, bool ignore_eos, std::optional<uint64_t> seed,
                       std::optional<int> logprobs, bool processed_logprobs, std::vector<int32_t> tracked_token_ids) {
             SamplingParams p;
             p.temperature = temperature;
             p.top_k = top_k;
             p.top_p = top_p;
             p.min_p = min_p;
             p.repetition_penalty = repetition_penalty;
             p.max_tokens = max_tokens;
             p.stop = std::move(stop);
             p.stop_token_ids = std::move(stop_token_ids);
             p.include_stop_str_in_output = include_stop_str_in_output;
             p.ignore_eos = ignore_eos;
             p.seed = seed;
             p.logprobs = logprobs.value_or(-1);
             p.processed_logprobs = processed_logprobs;
             p.tracked_token_ids = std::move(tracked_token_ids);
             return p;
           }),
           py::kw_only(), py::arg("temperature") = 1.0f, py::arg("top_k") = 0, py::arg("top_p") = 1.0f,
           py::arg("min_p") = 0.0f, py::arg("repetition_penalty") = 1.0f, py::arg("max_tokens") = 16,
           py::arg("stop") = std::vector<std::string>{}, py::arg("stop_token_ids") = std::vector<int32_t>{},
           py::arg("include_stop_str_in_output") = false, py::arg("ignore_eos") = false,
           py::arg("seed") = py::none(), py::arg("logprobs") = py::none(), py::arg("processed_logprobs") = false,
           py::arg("tracked_token_ids") = std::vector<int32_t>{})
      .def_readwrite("temperature", &SamplingParams::temperature)
      .def_readwrite("top_k", &SamplingParams::top_k)
      .def_readwrite("top_p", &SamplingParams::top_p)
      .def_readwrite("min_p", &SamplingParams::min_p)
      .def_readwrite("repetition_penalty", &SamplingParams::repetition_penalty)
      .def_readwrite("max_tokens", &SamplingParams::max_tokens)
      .def_readwrite("stop", &SamplingParams::stop)
      .def_readwrite("stop_token_ids", &SamplingParams::stop_token_ids)
      .def_readwrite("include_stop_str_in_output", &SamplingParams::include_stop_str_in_output)
      .def_readwrite("ignore_eos", &SamplingParams::ignore_eos)
      .def_readwrite("seed", &SamplingParams::seed)
      .def_property(
          "logprobs", [](const SamplingParams& p) -> std::optional<int> { return p.logprobs < 0 ? std::nullopt : std::optional<int>(p.logprobs); },
          [](SamplingParams& p, std::optional<int> v) { p.logprobs = v.value_or(-1); })
      .def_readwrite("processed_logprobs", &SamplingParams::processed_logprobs)
      .def_readwrite("tracked_token_ids", &SamplingParams::tracked_token_ids)
      .def("__repr__", [](const SamplingParams& p) {
        return fmt::format("SamplingParams(temperature={}, top_k={}, top_p={}, min_p={}, repetition_penalty={}, "
                           "max_tokens={}, stop={}, seed={}, logprobs={})",
                           p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty, p.max_tokens,
                           p.stop.size(), p.seed ? std::to_string(*p.seed) : "None", p.logprobs);
      });

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
      .def(py::init<const std::string&, const std::string&, const std::string&, std::optional<int64_t>,
                    std::optional<int64_t>, int64_t, int64_t, int64_t, uint64_t, bool, std::optional<std::string>>(),
           py::arg("model_dir"), py::kw_only(), py::arg("device") = "cpu", py::arg("dtype") = "float32",
           py::arg("kv_blocks") = py::none(), py::arg("kv_memory") = py::none(), py::arg("block_size") = 16,
           py::arg("max_batch_tokens") = 2048, py::arg("max_running_seqs") = 256, py::arg("seed") = 0,
           py::arg("prefix_caching") = true, py::arg("tokenizer_dir") = py::none())
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
      .def("stats", [](PyEngine& e) { return stats_dict(e.engine().stats()); })
      .def_property_readonly("has_tokenizer", &PyEngine::has_tokenizer)
      .def("decode", &PyEngine::decode, py::arg("ids"))
      .def_property_readonly("vocab_size", [](PyEngine& e) { return e.model().config().vocab_size; })
      .def_property_readonly("device", [](PyEngine& e) { return e.model().device().str(); })
      .def_property_readonly("dtype", [](PyEngine& e) { return dtype_name(e.model().dtype()); });
}

}  // namespace genprm::bindings
