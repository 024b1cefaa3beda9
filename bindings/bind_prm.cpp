// genprm._core.GenPRMCore: the C++ GenPRM (engine + sandbox + tokenizer + verifier). Results
// cross as JSON text (json.loads on the Python side); python/genprm/prm.py wraps it.
#include <string>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <vector>

#include "common.hpp"
#include "options.hpp"
#include "genprm/prm/genprm.hpp"
#include "py_genprm.hpp"

namespace genprm::bindings {
namespace {

using prm::GenPRM;
using prm::GenPRMOptions;

GenPRMOptions make_options(const std::string& device, const std::string& dtype, const py::dict& verifier,
                           const py::dict& engine, const py::dict& sandbox) {
  GenPRMOptions o;
  o.device = device;
  o.dtype = dtype;
  auto& v = o.verifier;
  std::vector<Setter> vs = {
      {"mode", [&v](const py::object& x) { v.mode = prm::parse_mode(x.cast<std::string>()); }},
      field("majority", v.majority), field("threshold", v.threshold),
      field("system_prompt", v.system_prompt), field("direct_system_prompt", v.direct_system_prompt),
      field("analyze_template", v.analyze_template), field("verify_template", v.verify_template),
      field("output_template", v.output_template), field("temperature", v.temperature),
      field("top_p", v.top_p), field("top_k", v.top_k), field("repetition_penalty", v.repetition_penalty),
      field("processed_logprobs", v.processed_logprobs),
      {"seed", [&v](const py::object& x) { v.seed = x.cast<uint64_t>(); }},
      field("max_tokens", v.max_tokens), field("analyze_max_tokens", v.analyze_max_tokens),
      field("round_limit", v.round_limit), field("fallback_tokens", v.fallback_tokens),
      field("max_fallbacks", v.max_fallbacks), field("max_solutions_in_flight", v.max_solutions_in_flight),
      field("start_next_step_early", v.start_next_step_early),
      field("first_stage_as_one_request", v.first_stage_as_one_request)};
  apply_options(verifier, "GenPRM", vs);
  v.validate();
  auto& e = o.engine;
  std::vector<Setter> es = {field("kv_blocks", e.kv_blocks), field("kv_memory_bytes", e.kv_memory_bytes),
                            field("block_size", e.block_size), field("max_batch_tokens", e.max_batch_tokens),
                            field("max_running_seqs", e.max_running_seqs), field("seed", e.seed),
                            field("prefix_caching", e.prefix_caching)};
  apply_options(engine, "GenPRM engine options", es);
  auto& s = o.sandbox;
  std::vector<Setter> ss = {field("python", s.python), field("timeout_s", s.timeout_s),
                            field("cpu_s", s.cpu_s), field("memory_bytes", s.memory_bytes),
                            field("workers", s.workers), field("warm_workers", s.warm_workers),
                            field("preload", s.preload), field("use_namespaces", s.use_namespaces),
                            field("drop_privileges", s.drop_privileges), field("use_seccomp", s.use_seccomp)};
  apply_options(sandbox, "GenPRM sandbox options", ss);
  return o;
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

/// A prior result handed back from Python as JSON text (VerificationResult), or null for None.
std::shared_ptr<const prm::SolutionResult> parse_prior(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  Json j;
  try {
    j = Json::parse(*text);
  } catch (const std::exception& e) {
    throw ValueError(fmt::format("prior: not a JSON verification result ({})", e.what()));
  }
  return std::make_shared<const prm::SolutionResult>(prm::solution_result_from_json(j));
}

/// The bound object (py_genprm.hpp, shared with the search bindings).
using Handle = PyGenPRM;

}  // namespace

void bind_prm(py::module_& m) {
  using Row = std::tuple<std::string, std::string, std::vector<std::string>>;
  py::class_<Handle>(m, "GenPRMCore",
                     "GenPRM verifier over the engine, sandbox and tokenizer of one checkpoint directory "
                     "(use genprm.GenPRM).")
      .def(py::init([](const std::string& model_dir, const std::string& device, const std::string& dtype,
                       const py::dict& verifier, const py::dict& engine, const py::dict& sandbox) {
             GenPRMOptions o = make_options(device, dtype, verifier, engine, sandbox);
             py::gil_scoped_release nogil;
             auto h = std::make_unique<Handle>();
             h->g = std::make_unique<GenPRM>(model_dir, std::move(o));
             return h;
           }),
           py::arg("model_dir"), py::arg("device") = "cpu", py::arg("dtype") = "float32",
           py::arg("verifier") = py::dict(), py::arg("engine") = py::dict(), py::arg("sandbox") = py::dict())
      .def(
          "verify",
          [](Handle& h, const std::string& id, const std::string& problem, const std::vector<std::string>& steps,
             const std::optional<std::string>& prior) {
            prm::SolutionInput in{id, problem, steps, parse_prior(prior)};
            prm::SolutionResult r;
            {
              py::gil_scoped_release nogil;
              std::lock_guard<std::mutex> lock(h.mu);
              r = h.g->verify(std::move(in));
            }
            return dump(prm::to_json(r));
          },
          py::arg("id"), py::arg("problem"), py::arg("steps"), py::arg("prior") = py::none(),
          "Verifies one solution; returns the result as JSON text. prior: the JSON of an earlier result of a "
          "prefix of the steps (only the steps after it are verified).")
      .def(
          "verify_many",
          [](Handle& h, const std::vector<Row>& rows, py::object on_result,
             const std::vector<std::optional<std::string>>& priors) {
            GENPRM_CHECK_ARG(priors.empty() || priors.size() == rows.size(),
                             "verify_many: {} priors for {} rows", priors.size(), rows.size());
            std::vector<prm::SolutionInput> in;
            in.reserve(rows.size());
            for (size_t i = 0; i < rows.size(); ++i) {
              const auto& [id, problem, steps] = rows[i];
              in.push_back({id, problem, steps, priors.empty() ? nullptr : parse_prior(priors[i])});
            }
            std::vector<prm::SolutionResult> out;
            {
              py::gil_scoped_release nogil;
              std::lock_guard<std::mutex> lock(h.mu);
              out = h.g->verify_many(std::move(in), [&](size_t i, const prm::SolutionResult& r) {
                if (on_result.is_none()) return;
                std::string text = dump(prm::to_json(r));
                py::gil_scoped_acquire gil;
                on_result(i, text);
              });
            }
            std::vector<std::string> res;
            res.reserve(out.size());
            for (const auto& r : out) res.push_back(dump(prm::to_json(r)));
            return res;
          },
          py::arg("rows"), py::arg("on_result") = py::none(),
          py::arg("priors") = std::vector<std::optional<std::string>>{},
          "Verifies (id, problem, steps) rows with many in flight; on_result(index, json) runs as each "
          "finishes; returns the JSON texts in input order.")
      .def("engine_stats",
           [](Handle& h) {
             EngineStats s;
             {
               py::gil_scoped_release nogil;
               std::lock_guard<std::mutex> lock(h.mu);
               s = h.g->engine_stats();
             }
             return stats_dict(s);
           })
      .def_property(
          "search_prefix_cache",
          [](Handle& h) {
            std::lock_guard<std::mutex> lock(h.mu);
            return h.scorer_options.reuse_prefixes;
          },
          [](Handle& h, bool on) {
            std::lock_guard<std::mutex> lock(h.mu);
            h.scorer_options.reuse_prefixes = on;
          },
          "Search bindings pass cached verified prefixes as priors (VerifierScorerOptions::reuse_prefixes).")
      .def_property_readonly("mode", [](const Handle& h) { return prm::mode_name(h.g->options().verifier.mode); })
      .def_property_readonly("majority", [](const Handle& h) { return h.g->options().verifier.majority; })
      .def_property_readonly("threshold", [](const Handle& h) { return h.g->options().verifier.threshold; })
      .def_property_readonly("device", [](const Handle& h) { return h.g->options().device; })
      .def_property_readonly("dtype", [](const Handle& h) { return h.g->options().dtype; })
      .def_property_readonly("sandbox_started", [](Handle& h) {
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(h.mu);
        return h.g->sandbox().started();
      });
}

}  // namespace genprm::bindings
