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

#include "bound.hpp"
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

/// A Python callable scorer(problem, solutions) -> one StepScores per solution
/// (python/genprm/search.py normalises what a user's scorer returns).
search::FunctionScorer python_scorer(py::object fn) {
  return search::FunctionScorer{[fn](const std::string& problem, const search::Solutions& sols) {
    py::gil_scoped_acquire gil;
    return fn(problem, sols).cast<std::vector<search::StepScores>>();
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
/// "steps"}] returns one SolutionResult per row (python/genprm/search.py builds it).
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
    return verify(rows).cast<std::vector<prm::SolutionResult>>();
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

/// How a many-problem run scores: a Python verify(rows) callable, or the scorer object; with
/// `batch`, a GenPRM verifies the waiting problems of all searches together once the policy is
/// idle (search::BatchVerifierScorer) with `cache` (whole solutions: no prefix reuse).
struct ManyScoring {
  bool batch = true;
  std::optional<search::VerifierScorerOptions> cache;  ///< default: the GenPRM's scorer_options
  size_t max_waiting = 0;
  py::object verify = py::none();
};

/// Runs the many-problem search `Search` (BeamSearch, Refiner, BestOfN) of `in` over `policy`;
/// on_result(index, result, error) as each finishes (error None, or the failure's text: the
/// result is then partial); returns the (result, error) pairs in input order. A
/// KeyboardInterrupt inside a Python scorer, or an exception from on_result, ends the run.
template <template <class, class> class Search, typename G, typename Problem, typename Options>
py::list run_many(G& policy, const py::object& scorer, std::vector<Problem> in, Options o, const ManyScoring& how,
                  const py::object& on_result) {
  GENPRM_CHECK_ARG(on_result.is_none() || PyCallable_Check(on_result.ptr()),
                   "on_result must be callable (index, result, error) or None");
  TrackedGenerator<G> gen{policy};
  std::vector<py::object> out(in.size());
  auto run = [&](auto& s) {
    using S = std::decay_t<decltype(s)>;
    Search<TrackedGenerator<G>, S> search(gen, s, std::move(o));
    search.run_many_async(std::move(in), [&](auto r) {
      py::object err = py::none();
      if (!r.ok()) {
        rethrow_interrupt(r.exception);
        err = py::str(failure_text(r.exception));
      }
      py::object res = py::cast(std::move(r.result));
      out[r.index] = py::make_tuple(res, err);
      if (!on_result.is_none()) on_result(r.index, res, err);
    });
    return 0;
  };
  auto busy = [&gen] { return gen.busy; };
  if (!how.verify.is_none()) {
    PyVerifier v{how.verify};
    search::BatchVerifierScorer<PyVerifier> s(v, busy, how.cache.value_or(search::VerifierScorerOptions{}),
                                              how.max_waiting);
    run(s);
  } else if (how.batch && py::isinstance<PyGenPRM>(scorer)) {
    auto& h = scorer.cast<PyGenPRM&>();
    LockedGenPRM v{&h};
    search::BatchVerifierScorer<LockedGenPRM> s(v, busy, how.cache.value_or(h.scorer_options), how.max_waiting);
    run(s);
  } else {
    with_scorer(scorer, run);
  }
  return py::cast(out);
}

/// RefineOptions::render from a Python callable (user message) -> prompt, or identity for None.
void set_render(search::RefineOptions& o, const py::object& render) {
  if (render.is_none()) return;
  GENPRM_CHECK_ARG(PyCallable_Check(render.ptr()), "refine: render must be callable (str) -> str");
  o.render = [render](const std::string& user) {
    py::gil_scoped_acquire gil;
    return render(user).cast<std::string>();
  };
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

  bind_struct<search::StepScores>(m, "StepScores", "A scorer's rewards (and critiques) of one solution's steps.");
  bind_struct<search::BeamSearchOptions>(m, "BeamSearchOptions", "Step-level beam search: N beams, M samples each.");
  bind_struct<search::Beam>(m, "Beam", "One beam: its steps, rewards and score.");
  bind_struct<search::BeamIteration>(m, "BeamIteration", "One iteration: the candidates and their status.");
  bind_struct<search::BeamSearchResult>(m, "BeamSearchResult", "The best beam, the finished ones and the trace.");
  bind_struct<search::RefineOptions>(m, "RefineOptions", "Critic refinement (render is passed separately).");
  bind_struct<search::RefineTurn>(m, "RefineTurn", "One solution of a refinement and its judgement.");
  bind_struct<search::RefineResult>(m, "RefineResult", "The turns of one refinement.");
  bind_struct<search::BestOfNOptions>(m, "BestOfNOptions", "Best-of-N: n samples per problem, scored and picked.");
  bind_struct<search::BestOfNCandidate>(m, "BestOfNCandidate", "One sampled solution and its step rewards.");
  bind_struct<search::BestOfNPick>(m, "BestOfNPick", "One selection method's pick.");
  bind_struct<search::BestOfNResult>(m, "BestOfNResult", "The candidates and picks of one problem.");

  m.def(
      "search_beam_search",
      [](PyEngine& policy, const py::object& scorer, const std::string& problem, const std::string& prompt,
         search::BeamSearchOptions o) {
        return with_scorer(scorer, [&](auto& s) {
          return search::beam_search(policy.engine(), s, problem, prompt, std::move(o));
        });
      },
      py::arg("policy"), py::arg("scorer"), py::arg("problem"), py::arg("prompt"), py::arg("options"));

  m.def(
      "search_beam_search_many",
      [](PyEngine& policy, const py::object& scorer, const std::vector<std::pair<std::string, std::string>>& problems,
         const search::BeamSearchOptions& o, py::object on_result, bool batch_scorer) {
        std::vector<search::BeamProblem> in;
        for (const auto& [problem, prompt] : problems) in.push_back({problem, prompt, std::nullopt});
        return run_many<search::BeamSearch>(policy.engine(), scorer, std::move(in), o, ManyScoring{batch_scorer},
                                            on_result);
      },
      py::arg("policy"), py::arg("scorer"), py::arg("problems"), py::arg("options"), py::arg("on_result") = py::none(),
      py::arg("batch_scorer") = true,
      "Beam search over many (problem, prompt) pairs at once on one engine; (result, error) pairs in input "
      "order. batch_scorer: a GenPRM verifies the candidates of all problems waiting for scores in one batch.");

  m.def(
      "search_refine",
      [](PyEngine& policy, const py::object& scorer, const std::string& problem, const std::string& prompt,
         search::RefineOptions o, py::object render, std::optional<std::string> initial) {
        set_render(o, render);
        return with_scorer(scorer, [&](auto& s) {
          return search::refine(policy.engine(), s, problem, prompt, std::move(o), initial);
        });
      },
      py::arg("policy"), py::arg("scorer"), py::arg("problem"), py::arg("prompt"), py::arg("options"),
      py::arg("render") = py::none(), py::arg("initial") = py::none());

  m.def(
      "search_refine_many",
      [](PyEngine& policy, const py::object& scorer,
         const std::vector<std::tuple<std::string, std::string, std::optional<std::string>>>& problems,
         search::RefineOptions o, py::object render, py::object on_result, bool batch_scorer) {
        set_render(o, render);
        std::vector<search::RefineProblem> in;
        for (const auto& [problem, prompt, initial] : problems) in.push_back({problem, prompt, initial, std::nullopt});
        return run_many<search::Refiner>(policy.engine(), scorer, std::move(in), std::move(o),
                                         ManyScoring{batch_scorer}, on_result);
      },
      py::arg("policy"), py::arg("scorer"), py::arg("problems"), py::arg("options"), py::arg("render") = py::none(),
      py::arg("on_result") = py::none(), py::arg("batch_scorer") = true,
      "Critic refinement of many (problem, prompt, initial) triples at once on one engine; (result, error) pairs "
      "in input order.");

  m.def(
      "search_best_of_n_many",
      [](const py::object& policy, const py::object& scorer,
         const std::vector<std::tuple<std::string, std::string, std::string, std::optional<std::string>>>& items,
         const search::BestOfNOptions& o, py::object on_result, py::object verify) {
        GENPRM_CHECK_ARG(verify.is_none() || PyCallable_Check(verify.ptr()), "verify must be callable (rows) or None");
        std::vector<search::BestOfNProblem> in;
        for (const auto& [id, problem, prompt, answer] : items) in.push_back({id, problem, prompt, answer});
        search::VerifierScorerOptions whole;  // every candidate is a whole solution: no prefix reuse
        whole.reuse_prefixes = false;
        const ManyScoring how{true, whole, static_cast<size_t>(o.max_problems_in_flight) * static_cast<size_t>(o.n),
                              verify};
        if (py::isinstance<PyEngine>(policy))
          return run_many<search::BestOfN>(policy.cast<PyEngine&>().engine(), scorer, std::move(in), o, how, on_result);
        PyPolicy p{policy};
        return run_many<search::BestOfN>(p, scorer, std::move(in), o, how, on_result);
      },
      py::arg("policy"), py::arg("scorer"), py::arg("items"), py::arg("options"), py::arg("on_result") = py::none(),
      py::arg("verify") = py::none(),
      "Best-of-N over (id, problem, prompt, answer) items on one engine (a genprm._core.Engine, or an object "
      "with submit(prompt, params, n, on_done) and poll()): one request of n samples per problem, split, scored "
      "and picked in C++ (search/best_of_n.hpp). scorer: a GenPRMCore (verified across problems), a callable "
      "(problem, solutions) -> rewards, or None with verify(rows) -> SolutionResults. (result, error) pairs in "
      "input order.");
}

}  // namespace genprm::bindings
