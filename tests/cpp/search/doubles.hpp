#pragma once
// Test doubles for search/: a scripted Generator (callbacks on poll(), one request per poll, so
// every request of an iteration is in flight before any returns) and step scorers.
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "genprm/gen/request.hpp"
#include "genprm/search/scorer.hpp"

namespace search_test {

using namespace genprm;

/// What the script writes for (prompt, sample index): text and how it ended.
struct Written {
  std::string text;
  std::string finish_reason = "stop";
  std::string stop_reason;  ///< the delimiter hit; "" = EOS
};

struct ScriptedGenerator {
  std::function<Written(const std::string& prompt, int sample)> script;
  struct Pending {
    uint64_t id;
    GenerationRequest req;
    GenerationCallback cb;
  };
  std::deque<Pending> pending;
  std::vector<GenerationRequest> log;
  size_t max_pending = 0;
  uint64_t next_id = 1;

  uint64_t submit(GenerationRequest req, GenerationCallback cb) {
    log.push_back(req);
    pending.push_back({next_id, std::move(req), std::move(cb)});
    max_pending = std::max(max_pending, pending.size());
    return next_id++;
  }
  bool poll() {
    if (pending.empty()) return false;
    Pending p = std::move(pending.front());
    pending.pop_front();
    GenerationOutput out;
    out.request_id = p.id;
    out.prompt_ids.assign(p.req.prompt_text.size(), 0);
    for (int i = 0; i < p.req.n; ++i) {
      Written w = script(p.req.prompt_text, i);
      SampleOutput s;
      s.text = w.text;
      s.finish_reason = w.finish_reason;
      s.stop_reason = w.stop_reason;
      s.token_ids.assign(w.text.size() + (w.stop_reason.empty() ? 0 : 1), 7);  // one token a char
      out.samples.push_back(s);
    }
    p.cb(std::move(out));
    return true;
  }
  void run_until_idle() {
    while (poll()) {
    }
  }
  void cancel(uint64_t) {}
};

/// Synchronous scorer: reward of a step = table[step name] (name = text up to the first space),
/// `fallback` otherwise; critique = "critique of <name>". Records every batch.
struct TableScorer {
  std::map<std::string, double> table;
  double fallback = 0.1;
  std::vector<search::Solutions> batches;

  static std::string name(const std::string& step) { return step.substr(0, step.find(' ')); }
  void score(const std::string&, search::Solutions sols, search::ScoreCallback done) {
    batches.push_back(sols);
    std::vector<search::StepScores> out;
    for (const auto& s : sols) {
      search::StepScores sc;
      for (const auto& step : s) {
        auto it = table.find(name(step));
        sc.rewards.push_back(it == table.end() ? fallback : it->second);
        sc.critiques.push_back("critique of " + name(step));
      }
      out.push_back(sc);
    }
    done(out);
  }
};

/// The same table, answered asynchronously: score() queues, poll() answers one batch.
struct AsyncTableScorer {
  TableScorer inner;
  std::deque<std::pair<search::Solutions, search::ScoreCallback>> queue;
  int polls = 0;
  void score(const std::string& problem, search::Solutions sols, search::ScoreCallback done) {
    (void)problem;
    queue.emplace_back(std::move(sols), std::move(done));
  }
  bool poll() {
    ++polls;
    if (queue.empty()) return false;
    auto [sols, done] = std::move(queue.front());
    queue.pop_front();
    inner.score("", std::move(sols), std::move(done));
    return true;
  }
};

}  // namespace search_test
