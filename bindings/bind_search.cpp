// genprm._core search bindings: scores, votes, beam search and critic refinement over a Python
// Engine (PyEngine) with a GenPRM (PyGenPRM) or a Python callable as the step scorer.
// python/genprm/search.py wraps them.
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.hpp"
#include "genprm/search/search.hpp"
#include "py_engine.hpp"
#include "py_genprm.hpp"

namespace genprm::bindings {
namespace {

using search::Answer;

py::object answer_obj(const Answer& a) { return a ? py::object(py::str(*a)) : py::object(py::none()); }

py::dict vote_dict(const search::VoteResult& r) {
  py::dict d;
  d["answer"] = answer_obj(r.answer);
  d["index"] = r.group < 0 ? py::object(py::none()) : py::object(py::int_(r.index));
  d["weight"] = r.weight;
  d["group_of"] = r.groups.group_of;
  d["groups"] = r.groups.members;
  d["weights"] = r.weights;
  return d;
}

py::dict beam_dict(const search::Beam& b, const std::string& sep) {
  py::dict d;
  d["steps"] = b.steps;
  d["text"] = b.text(sep);
  d["rewards"] = b.rewards;
  d["critiques"] = b.critiques;
  d["score"] = b.score;
  d["tokens"] = b.tokens;
  d["finish_reason"] = b.finish_reason;
  d["answer"] = answer_obj(b.answer);
  d["iteration"] = b.iteration;
  d["order"] = b.order;
  d["parent"] = b.parent;
  return d;
}

search::BeamSearchOptions beam_options(int beams, int width, int max_steps, int max_step_tokens,
                                       long max_total_tokens, const SamplingParams& sampling,
                                       const std::vector<std::string>& step_delimiters,
                                       const std::string& step_separator, const std::string& aggregation,
                                       std::optional<uint64_t> seed, int max_problems_in_flight) {
  search::BeamSearchOptions o;
  o.beams = beams;
  o.width = width;
  o.max_steps = max_steps;
  o.max_step_tokens = max_step_tokens;
  o.max_total_tokens = max_total_tokens;
  o.sampling = sampling;
  o.step_delimiters = step_delimiters;
  o.step_separator = step_separator;
  o.aggregation = search::parse_aggregation(aggregation);
  o.seed = seed;
  o.max_problems_in_flight = max_problems_in_flight;
  o.validate();
  return o;
}

py::dict beam_result_dict(const search::BeamSearchResult& res, const std::string& sep) {
  py::dict d;
  d["best"] = beam_dict(res.best, sep);
  py::list fin;
  for (const auto& b : res.finished) fin.append(beam_dict(b, sep));
  d["finished"] = fin;
  py::list its;
  for (const auto& it : res.iterations) {
    py::dict t;
    t["iteration"] = it.iteration;
    t["requests"] = it.requests;
    py::list c;
    for (const auto& b : it.candidates) c.append(beam_dict(b, sep));
    t["candidates"] = c;
    t["status"] = it.status;
    its.append(t);
  }
  d["iterations"] = its;
  d["requests"] = res.requests;
  d["generated_tokens"] = res.generated_tokens;
  d["prompt_tokens"] = res.prompt_tokens;
  d["cached_prompt_tokens"] = res.cached_prompt_tokens;
  return d;
}

/// A Python callable scorer(problem, solutions) -> per solution a list of rewards, or a dict with
/// "rewards" or "value" (and optionally "critiques"), or an object with a `value` list
/// (VerificationResult).
search::FunctionScorer python_scorer(py::object fn) {
  return search::FunctionScorer{[fn](const std::string& problem, const search::Solutions& sols) {
    py::gil_scoped_acquire gil;
    py::object got = fn(problem, sols);
    GENPRM_CHECK_ARG(py::isinstance<py::sequence>(got) && !py::isinstance<py::str>(got),
                     "scorer: must return a list (one entry per solution), got {}",
                     std::string(Py_TYPE(got.ptr())->tp_name));
    auto seq = got.cast<py::sequence>();
    GENPRM_CHECK_ARG(seq.size() == sols.size(), "scorer: returned {} entries for {} solutions", seq.size(),
                     sols.size());
    std::vector<search::StepScores> out(sols.size());
    for (size_t i = 0; i < sols.size(); ++i) {
      py::object item = seq[i];
      try {
        if (py::isinstance<py::dict>(item)) {
          auto d = item.cast<py::dict>();
          const char* key = d.contains("rewards") ? "rewards" : "value";
          GENPRM_CHECK_ARG(d.contains(key), "scorer: entry {} is a dict without 'rewards'", i);
          out[i].rewards = d[key].cast<std::vector<double>>();
          if (d.contains("critiques") && !d["critiques"].is_none())
            out[i].critiques = d["critiques"].cast<std::vector<std::string>>();
        } else if (py::hasattr(item, "value") && !py::isinstance<py::sequence>(item)) {
          out[i].rewards = item.attr("value").cast<std::vector<double>>();
        } else {
          out[i].rewards = item.cast<std::vector<double>>();
        }
      } catch (const py::cast_error&) {
        throw ValueError(fmt::format("scorer: entry {} is not a list of rewards (floats)", i));
      }
      GENPRM_CHECK_ARG(out[i].rewards.size() == sols[i].size(),
                       "scorer: entry {} has {} rewards for {} steps", i, out[i].rewards.size(), sols[i].size());
    }
    return out;
  }};
}

/// GenPRM (its own engine) as the verifier of search's scorers (VerifierScorer,
/// BatchVerifierScorer): each batch runs with the GIL released and the GenPRM's lock held.
struct LockedGenPRM {
  PyGenPRM* h;
  std::vector<prm::SolutionResult> verify_many(std::vector<prm::SolutionInput> in) {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(h->mu);
    return h->g->verify_many(std::move(in));
  }
};

/// A Python verifier (a genprm.GenPRM look-alike): verify(rows) with rows [{"id", "problem",
/// "steps"}] returns one JSON verification result per row (python/genprm/search.py builds it).
struct PyVerifier {
  py::object verify;
  std::vector<prm::SolutionResult> verify_many(std::vector<prm::SolutionInput> in) {
    py::list rows;
    for (const auto& x : in) {
      py::dict r;
      r["id"] = x.id;
      r["problem"] = x.problem;
      r["steps"] = x.steps;
      rows.append(r);
    }
    std::vector<prm::SolutionResult> out;
    for (const auto& text : verify(rows).cast<std::vector<std::string>>())
      out.push_back(prm::solution_result_from_json(Json::parse(text)));
    return out;
  }
};

/// A Python policy object (a genprm.Engine look-alike with submit(prompt, params, n, on_done) and
/// poll()) as a Generator; calls run with the GIL held, as every search loop here runs.
struct PyPolicy {
  py::object obj;
  uint64_t submit(GenerationRequest req, GenerationCallback cb) {
    py::cpp_function on_done([cb](const GenerationOutput& out) { cb(out); });
    return obj.attr("submit")(req.prompt_text, req.params, req.n, on_done).cast<uint64_t>();
  }
  bool poll() { return obj.attr("poll")().cast<bool>(); }
  void cancel(uint64_t id) { obj.attr("cancel")(id); }
};

/// A KeyboardInterrupt raised inside a Python scorer ends the whole run, not one problem.
void rethrow_interrupt(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (py::error_already_set& x) {
    if (x.matches(PyExc_KeyboardInterrupt)) throw;
  } catch (...) {
  }
}

search::RefineOptions refine_options(int max_turns, int max_tokens, double threshold, const SamplingParams& sampling,
                                     const std::string& aggregation, const std::string& refine_template,
                                     const py::object& render, std::optional<uint64_t> seed,
                                     int max_problems_in_flight) {
  search::RefineOptions o;
  o.max_turns = max_turns;
  o.max_tokens = max_tokens;
  o.threshold = threshold;
  o.sampling = sampling;
  o.aggregation = search::parse_aggregation(aggregation);
  if (!refine_template.empty()) o.refine_template = refine_template;
  if (!render.is_none()) {
    GENPRM_CHECK_ARG(PyCallable_Check(render.ptr()), "refine: render must be callable (str) -> str");
    o.render = [render](const std::string& user) {
      py::gil_scoped_acquire gil;
      return render(user).cast<std::string>();
    };
  }
  o.seed = seed;
  o.max_problems_in_flight = max_problems_in_flight;
  o.validate();
  return o;
}

/// {"turns": [...], "final" (None without turns), "all_correct", "requests", "generated_tokens"}.
py::dict refine_result_dict(const search::RefineResult& res) {
  py::list turns;
  for (const auto& t : res.turns) {
    py::dict d;
    d["prompt"] = t.prompt;
    d["text"] = t.text;
    d["steps"] = t.steps;
    d["rewards"] = t.rewards;
    d["critiques"] = t.critiques;
    d["incorrect"] = t.incorrect;
    d["feedback"] = t.feedback;
    d["score"] = t.score;
    d["answer"] = answer_obj(t.answer);
    d["finish_reason"] = t.finish_reason;
    turns.append(d);
  }
  py::dict out;
  out["turns"] = turns;
  out["final"] = turns.empty() ? py::object(py::none()) : py::object(turns[turns.size() - 1]);
  out["all_correct"] = res.all_correct;
  out["requests"] = res.requests;
  out["generated_tokens"] = res.generated_tokens;
  return out;
}

/// Runs `f(scorer)` with the scorer that `obj` stands for. A GenPRM gets one VerifierScorer per
/// search call, so its prefix cache (options from PyGenPRM::scorer_options) lets each step of
/// each beam be verified once.
template <typename F>
auto with_scorer(const py::object& obj, F&& f) {
  if (py::isinstance<PyGenPRM>(obj)) {
    auto& h = obj.cast<PyGenPRM&>();
    LockedGenPRM v{&h};
    search::VerifierScorer<LockedGenPRM> s(v, h.scorer_options);
    return f(s);
  }
  GENPRM_CHECK_ARG(PyCallable_Check(obj.ptr()),
                   "scorer: must be a genprm.GenPRM or a callable (problem, solutions) -> rewards, got {}",
                   std::string(Py_TYPE(obj.ptr())->tp_name));
  auto s = python_scorer(obj);
  return f(s);
}

/// with_scorer for a many-problem run over `gen`: with `batch`, a GenPRM verifies the waiting
/// problems of all searches together once the policy engine is idle (search::BatchVerifierScorer).
template <typename G, typename F>
void with_many_scorer(const py::object& scorer, bool batch, const TrackedGenerator<G>& gen, F&& run) {
  if (batch && py::isinstance<PyGenPRM>(scorer)) {
    auto& h = scorer.cast<PyGenPRM&>();
    LockedGenPRM v{&h};
    search::BatchVerifierScorer<LockedGenPRM> s(v, [&gen] { return gen.busy; }, h.scorer_options);
    run(s);
  } else {
    with_scorer(scorer, run);
  }
}

/// One problem of search_best_of_n_many: (id as given, its label, problem, prompt, answer).
using BonItem = std::tuple<py::object, std::string, std::string, std::string, std::optional<std::string>>;

/// A failure as Python names it: "Type: message" for a Python exception, else what().
std::string failure_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (py::error_already_set& x) {
    return py::str(x.type().attr("__name__")).cast<std::string>() + ": " + py::str(x.value()).cast<std::string>();
  } catch (...) {
    return error_message(e);
  }
}

py::object optional_bool(const std::optional<bool>& b) { return b ? py::object(py::bool_(*b)) : py::object(py::none()); }

/// The row python/genprm/search.py best_of_n_many documents.
py::dict bon_row(const BonItem& item, const search::BestOfNProblemResult& r, const std::string& aggregation) {
  const auto& [id, label, problem, prompt, answer] = item;
  py::dict d;
  d["index"] = r.index;
  d["id"] = id;
  d["problem"] = problem;
  d["answer"] = answer_obj(answer);
  py::list cands;
  for (const auto& c : r.result.candidates) {
    py::dict x;
    x["text"] = c.text;
    x["steps"] = c.steps;
    x["answer"] = answer_obj(c.answer);
    x["finish_reason"] = c.finish_reason;
    x["tokens"] = c.tokens;
    x["value"] = c.rewards;
    cands.append(x);
  }
  d["candidates"] = cands;
  py::dict picks;
  d["prediction"] = py::none();
  d["correct"] = answer ? py::object(py::bool_(false)) : py::object(py::none());
  d["pass"] = py::none();
  if (r.ok()) {
    for (const auto& p : r.result.picks) {
      py::dict x;
      x["index"] = p.index ? py::object(py::int_(*p.index)) : py::object(py::none());
      x["answer"] = answer_obj(p.answer);
      x["correct"] = optional_bool(p.correct);
      picks[py::str(p.method)] = x;
    }
    const auto& main = r.result.pick("bon_" + aggregation);
    d["prediction"] = answer_obj(main.answer);
    d["correct"] = optional_bool(main.correct);
    d["pass"] = optional_bool(r.result.pass);
  }
  d["picks"] = picks;
  d["error"] = r.ok() ? py::object(py::none()) : py::object(py::str(failure_text(r.exception)));
  // key order of the Python rows: index, id, problem, answer, candidates, picks, prediction, ...
  py::dict row;
  for (const char* k : {"index", "id", "problem", "answer", "candidates", "picks", "prediction", "correct", "pass",
                        "error"})
    row[k] = d[k];
  return row;
}

/// Best-of-N of `items` over `gen` with the scorer `scorer` / `verify` stands for; rows in input
/// order, on_result(index, row) as each finishes.
template <typename G>
py::list run_best_of_n(G& policy, const py::object& scorer, const py::object& verify, const std::vector<BonItem>& items,
                       search::BestOfNOptions o, const py::object& on_result) {
  TrackedGenerator<G> gen{policy};
  const std::string agg = search::aggregation_name(o.aggregation);
  const size_t max_waiting = static_cast<size_t>(o.max_problems_in_flight) * static_cast<size_t>(o.n);
  std::vector<search::BestOfNProblem> in;
  for (const auto& [id, label, problem, prompt, answer] : items) in.push_back({label, problem, prompt, answer});
  std::vector<py::object> out(items.size());
  auto run = [&](auto& s) {
    using S = std::decay_t<decltype(s)>;
    search::BestOfN<TrackedGenerator<G>, S> bon(gen, s, std::move(o));
    bon.run_many_async(std::move(in), [&](search::BestOfNProblemResult r) {
      if (!r.ok()) rethrow_interrupt(r.exception);
      py::dict d = bon_row(items[r.index], r, agg);
      out[r.index] = d;
      if (!on_result.is_none()) on_result(r.index, d);
    });
  };
  // Verifiers batch across problems (no prefix reuse: every candidate is a whole solution).
  search::VerifierScorerOptions whole;
  whole.reuse_prefixes = false;
  auto busy = [&gen] { return gen.busy; };
  if (!verify.is_none()) {
    PyVerifier v{verify};
    search::BatchVerifierScorer<PyVerifier> s(v, busy, whole, max_waiting);
    run(s);
  } else if (py::isinstance<PyGenPRM>(scorer)) {
    LockedGenPRM v{&scorer.cast<PyGenPRM&>()};
    search::BatchVerifierScorer<LockedGenPRM> s(v, busy, whole, max_waiting);
    run(s);
  } else {
    with_scorer(scorer, [&](auto& s) {
      run(s);
      return 0;
    });
  }
  return py::cast(out);
}

}  // namespace

void bind_search(py::module_& m) {
  m.def(
      "search_aggregate",
      [](const std::vector<double>& rewards, const std::string& how) {
        return search::aggregate(rewards, search::parse_aggregation(how));
      },
      py::arg("rewards"), py::arg("how") = "min");
  m.def("search_best_of_n", &search::best_of_n, py::arg("scores"));
  m.def(
      "search_majority_vote", [](const std::vector<Answer>& answers) { return vote_dict(search::majority_vote(answers)); },
      py::arg("answers"));
  m.def(
      "search_weighted_vote",
      [](const std::vector<Answer>& answers, const std::vector<double>& scores) {
        return vote_dict(search::weighted_vote(answers, scores));
      },
      py::arg("answers"), py::arg("scores"));

  m.def(
      "search_beam_search",
      [](PyEngine& policy, const py::object& scorer, const std::string& problem, const std::string& prompt, int beams,
         int width, int max_steps, int max_step_tokens, long max_total_tokens, const SamplingParams& sampling,
         const std::vector<std::string>& step_delimiters, const std::string& step_separator,
         const std::string& aggregation, std::optional<uint64_t> seed) {
        auto o = beam_options(beams, width, max_steps, max_step_tokens, max_total_tokens, sampling, step_delimiters,
                              step_separator, aggregation, seed, 1);
        const std::string sep = o.step_separator;
        auto res = with_scorer(scorer, [&](auto& s) {
          return search::beam_search(policy.engine(), s, problem, prompt, std::move(o));
        });
        return beam_result_dict(res, sep);
      },
      py::arg("policy"), py::arg("scorer"), py::arg("problem"), py::arg("prompt"), py::kw_only(), py::arg("beams"),
      py::arg("width"), py::arg("max_steps"), py::arg("max_step_tokens"), py::arg("max_total_tokens"),
      py::arg("sampling"), py::arg("step_delimiters"), py::arg("step_separator"), py::arg("aggregation"),
      py::arg("seed") = py::none());

  m.def(
      "search_beam_search_many",
      [](PyEngine& policy, const py::object& scorer, const std::vector<std::pair<std::string, std::string>>& problems,
         int beams, int width, int max_steps, int max_step_tokens, long max_total_tokens,
         const SamplingParams& sampling, const std::vector<std::string>& step_delimiters,
         const std::string& step_separator, const std::string& aggregation, std::optional<uint64_t> seed,
         int max_problems_in_flight, py::object on_result, bool batch_scorer) {
        auto o = beam_options(beams, width, max_steps, max_step_tokens, max_total_tokens, sampling, step_delimiters,
                              step_separator, aggregation, seed, max_problems_in_flight);
        GENPRM_CHECK_ARG(on_result.is_none() || PyCallable_Check(on_result.ptr()),
                         "on_result must be callable (index, result) or None");
        const std::string sep = o.step_separator;
        std::vector<search::BeamProblem> in;
        for (const auto& [problem, prompt] : problems) in.push_back({problem, prompt, std::nullopt});
        std::vector<py::object> out(in.size());
        // Results become dicts as they finish (the GIL is held throughout, as in beam_search); an
        // exception from on_result (or a KeyboardInterrupt inside a Python scorer) ends the run.
        using G = std::decay_t<decltype(policy.engine())>;
        TrackedGenerator<G> gen{policy.engine()};
        auto run = [&](auto& s) {
          using S = std::decay_t<decltype(s)>;
          search::BeamSearch<TrackedGenerator<G>, S> bs(gen, s, std::move(o));
          bs.run_many_async(std::move(in), [&](search::BeamProblemResult r) {
            py::dict d;
            if (r.ok()) {
              d = beam_result_dict(r.result, sep);
              d["error"] = py::none();
            } else {
              try {
                std::rethrow_exception(r.exception);
              } catch (py::error_already_set& e) {
                if (e.matches(PyExc_KeyboardInterrupt)) throw;
              } catch (...) {
              }
              d["best"] = py::none();
              d["error"] = r.error;
              d["requests"] = r.result.requests;
              d["generated_tokens"] = r.result.generated_tokens;
              d["prompt_tokens"] = r.result.prompt_tokens;
              d["cached_prompt_tokens"] = r.result.cached_prompt_tokens;
            }
            out[r.index] = d;
            if (!on_result.is_none()) on_result(r.index, d);
          });
          return 0;
        };
        with_many_scorer(scorer, batch_scorer, gen, run);
        return py::cast(out);
      },
      py::arg("policy"), py::arg("scorer"), py::arg("problems"), py::kw_only(), py::arg("beams"), py::arg("width"),
      py::arg("max_steps"), py::arg("max_step_tokens"), py::arg("max_total_tokens"), py::arg("sampling"),
      py::arg("step_delimiters"), py::arg("step_separator"), py::arg("aggregation"), py::arg("seed") = py::none(),
      py::arg("max_problems_in_flight") = 8, py::arg("on_result") = py::none(), py::arg("batch_scorer") = true,
      "Beam search over many (problem, prompt) pairs at once on one engine; on_result(index, dict) runs as each "
      "finishes; returns the dicts in input order (a failed problem: best None and its error). batch_scorer: a "
      "GenPRM verifies the candidates of all problems waiting for scores in one batch (else per problem).");

  m.def(
      "search_refine",
      [](PyEngine& policy, const py::object& scorer, const std::string& problem, const std::string& prompt,
         int max_turns, int max_tokens, double threshold, const SamplingParams& sampling, const std::string& aggregation,
         const std::string& refine_template, py::object render, std::optional<std::string> initial,
         std::optional<uint64_t> seed) {
        auto o = refine_options(max_turns, max_tokens, threshold, sampling, aggregation, refine_template, render, seed, 1);
        auto res = with_scorer(scorer, [&](auto& s) {
          return search::refine(policy.engine(), s, problem, prompt, std::move(o), initial);
        });
        return refine_result_dict(res);
      },
      py::arg("policy"), py::arg("scorer"), py::arg("problem"), py::arg("prompt"), py::kw_only(),
      py::arg("max_turns"), py::arg("max_tokens"), py::arg("threshold"), py::arg("sampling"), py::arg("aggregation"),
      py::arg("refine_template") = "", py::arg("render") = py::none(), py::arg("initial") = py::none(),
      py::arg("seed") = py::none());

  m.def(
      "search_refine_many",
      [](PyEngine& policy, const py::object& scorer,
         const std::vector<std::tuple<std::string, std::string, std::optional<std::string>>>& problems, int max_turns,
         int max_tokens, double threshold, const SamplingParams& sampling, const std::string& aggregation,
         const std::string& refine_template, py::object render, std::optional<uint64_t> seed,
         int max_problems_in_flight, py::object on_result, bool batch_scorer) {
        auto o = refine_options(max_turns, max_tokens, threshold, sampling, aggregation, refine_template, render, seed,
                                max_problems_in_flight);
        GENPRM_CHECK_ARG(on_result.is_none() || PyCallable_Check(on_result.ptr()),
                         "on_result must be callable (index, result) or None");
        std::vector<search::RefineProblem> in;
        for (const auto& [problem, prompt, initial] : problems) in.push_back({problem, prompt, initial, std::nullopt});
        std::vector<py::object> out(in.size());
        using G = std::decay_t<decltype(policy.engine())>;
        TrackedGenerator<G> gen{policy.engine()};
        auto run = [&](auto& s) {
          using S = std::decay_t<decltype(s)>;
          search::Refiner<TrackedGenerator<G>, S> rf(gen, s, std::move(o));
          rf.run_many_async(std::move(in), [&](search::RefineProblemResult r) {
            py::dict d;
            if (r.ok()) {
              d = refine_result_dict(r.result);
              d["error"] = py::none();
            } else {
              rethrow_interrupt(r.exception);
              d = refine_result_dict(r.result);
              d["error"] = r.error;
            }
            out[r.index] = d;
            if (!on_result.is_none()) on_result(r.index, d);
          });
          return 0;
        };
        with_many_scorer(scorer, batch_scorer, gen, run);
        return py::cast(out);
      },
      py::arg("policy"), py::arg("scorer"), py::arg("problems"), py::kw_only(), py::arg("max_turns"),
      py::arg("max_tokens"), py::arg("threshold"), py::arg("sampling"), py::arg("aggregation"),
      py::arg("refine_template") = "", py::arg("render") = py::none(), py::arg("seed") = py::none(),
      py::arg("max_problems_in_flight") = 8, py::arg("on_result") = py::none(), py::arg("batch_scorer") = true,
      "Critic refinement of many (problem, prompt, initial) triples at once on one engine; on_result(index, dict) "
      "runs as each finishes; returns the dicts in input order (a failed problem: its turns so far, final None and "
      "its error). batch_scorer: a GenPRM verifies the solutions of all problems waiting for scores in one batch "
      "once the policy engine is idle (else per problem and turn).");

  m.def(
      "search_best_of_n_many",
      [](const py::object& policy, const py::object& scorer, const std::vector<BonItem>& items, int n,
         const SamplingParams& sampling, const std::vector<std::string>& step_delimiters,
         const std::string& aggregation, int max_problems_in_flight, py::object on_result, py::object verify) {
        search::BestOfNOptions o;
        o.n = n;
        o.sampling = sampling;
        o.step_delimiters = step_delimiters;
        o.aggregation = search::parse_aggregation(aggregation);
        o.max_problems_in_flight = max_problems_in_flight;
        o.validate();
        GENPRM_CHECK_ARG(on_result.is_none() || PyCallable_Check(on_result.ptr()),
                         "on_result must be callable (index, result) or None");
        GENPRM_CHECK_ARG(verify.is_none() || PyCallable_Check(verify.ptr()), "verify must be callable (rows) or None");
        if (py::isinstance<PyEngine>(policy)) return run_best_of_n(policy.cast<PyEngine&>().engine(), scorer, verify, items, std::move(o), on_result);
        PyPolicy p{policy};
        return run_best_of_n(p, scorer, verify, items, std::move(o), on_result);
      },
      py::arg("policy"), py::arg("scorer"), py::arg("items"), py::kw_only(), py::arg("n"), py::arg("sampling"),
      py::arg("step_delimiters"), py::arg("aggregation"), py::arg("max_problems_in_flight") = 8,
      py::arg("on_result") = py::none(), py::arg("verify") = py::none(),
      "Best-of-N over (id, label, problem, prompt, answer) items on one engine (a genprm._core.Engine, or an object "
      "with submit(prompt, params, n, on_done) and poll()): one request of n samples per problem, split, scored "
      "and picked in C++ (search/best_of_n.hpp). scorer: a GenPRMCore (verified across problems), a callable "
      "(problem, solutions) -> rewards, or None with verify(rows) -> JSON results. Returns the rows in input "
      "order; on_result(index, row) runs as each finishes.");
}

}  // namespace genprm::bindings
