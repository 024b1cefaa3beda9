#pragma once
// Test doubles for the prm verifier: a byte-level fake tokenizer (with single tokens for "Yes"
// and "No"), the DeepSeek-R1-Distill chat template (genprm::render_chat), a scripted Generator and a
// fake code executor with one variable namespace per session.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <utility>
#include <string>
#include <vector>

#include "genprm/gen/request.hpp"
#include "genprm/prm/verifier.hpp"

namespace prmtest {

using namespace genprm;

constexpr int32_t kYes = 256;
constexpr int32_t kNo = 257;
inline const std::string kBos = "<｜begin▁of▁sentence｜>";
inline const std::string kEos = "<｜end▁of▁sentence｜>";

inline std::vector<int32_t> fake_encode(const std::string& s) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 3, "Yes") == 0) { ids.push_back(kYes); i += 3; continue; }
    if (s.compare(i, 2, "No") == 0) { ids.push_back(kNo); i += 2; continue; }
    ids.push_back(static_cast<unsigned char>(s[i]));
    ++i;
  }
  return ids;
}

inline std::string fake_decode(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (id == kYes) s += "Yes";
    else if (id == kNo) s += "No";
    else s += static_cast<char>(id);
  }
  return s;
}

/// The DeepSeek-R1-Distill template (tests/data/r1distill_tokenizer), no generation prompt.
inline std::string render_r1(const std::vector<prm::ChatTurn>& turns) {
  return render_chat(ChatFormat::deepseek_r1(kBos, kEos), turns, false);
}

inline prm::TokenizerOps fake_tokenizer() {
  prm::TokenizerOps t;
  t.encode = fake_encode;
  t.decode = fake_decode;
  t.render_chat = render_r1;
  t.eos_token = kEos;
  t.yes_id = kYes;
  t.no_id = kNo;
  return t;
}

inline bool ends_with(const std::string& s, const std::string& x) {
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

/// What the scripted model writes after a prompt: text (cut by the double at the request's stop
/// strings and max_tokens, as the engine does) and the tracked log-probabilities of Yes / No at
/// every position; with SamplingParams::logprobs = k > 0, also the first k entries of `top` at
/// every position (the sampled token's own log-probability is log(p_yes) / log(p_no) for the
/// Yes / No tokens, else `other_logprob`).
struct Continuation {
  std::string text;
  double p_yes = 0.8;
  double p_no = 0.2;
  std::vector<std::pair<int32_t, float>> top;
  float other_logprob = -0.01f;
};

struct ScriptedGenerator {
  using Script = std::function<Continuation(const std::string& prompt, int sample)>;
  Script script;
  struct Pending {
    uint64_t id;
    GenerationRequest req;
    GenerationCallback cb;
  };
  std::deque<Pending> pending;
  std::vector<GenerationRequest> log;  // every request, in submission order
  std::vector<std::string> events;     // "submit <prompt tail>" / "done" in order
  uint64_t next_id = 1;
  size_t max_pending = 0;
  /// prompts already seen (to fill cached_prompt_tokens like a radix cache would)
  std::vector<std::vector<int32_t>> seen;

  uint64_t submit(GenerationRequest req, GenerationCallback cb) {
    log.push_back(req);
    pending.push_back({next_id, std::move(req), std::move(cb)});
    max_pending = std::max(max_pending, pending.size());
    return next_id++;
  }

  size_t longest_cached(const std::vector<int32_t>& ids) const {
    size_t best = 0;
    for (const auto& s : seen) {
      size_t k = 0;
      while (k < s.size() && k < ids.size() && s[k] == ids[k]) ++k;
      best = std::max(best, k);
    }
    return best;
  }

  bool poll() {
    if (pending.empty()) return false;
    Pending p = std::move(pending.front());
    pending.pop_front();
    GenerationOutput out;
    out.request_id = p.id;
    out.prompt_ids = p.req.prompt_ids;
    out.cached_prompt_tokens = longest_cached(p.req.prompt_ids);
    for (int i = 0; i < p.req.n; ++i) {
      Continuation c = script(p.req.prompt_text, i);
      SampleOutput s;
      std::string text = c.text;
      s.finish_reason = "stop";  // EOS when the script ends without a stop string
      size_t cut = std::string::npos;
      for (const auto& stop : p.req.params.stop) {
        size_t k = text.find(stop);
        if (k != std::string::npos && (cut == std::string::npos || k + stop.size() < cut)) {
          cut = k + stop.size();
          s.stop_reason = stop;
        }
      }
      if (cut != std::string::npos) text = text.substr(0, cut);
      std::vector<int32_t> ids = fake_encode(text);
      if (static_cast<int>(ids.size()) > p.req.params.max_tokens) {
        ids.resize(static_cast<size_t>(p.req.params.max_tokens));
        text = fake_decode(ids);
        s.finish_reason = "length";
        s.stop_reason.clear();
      }
      s.token_ids = ids;
      s.text = text;
      for (int32_t id : ids) {
        TokenLogprobs lp;
        lp.token = id;
        lp.logprob = id == kYes ? static_cast<float>(std::log(c.p_yes))
                     : id == kNo ? static_cast<float>(std::log(c.p_no)) : c.other_logprob;
        const size_t k = static_cast<size_t>(std::max(p.req.params.logprobs, 0));
        lp.top.assign(c.top.begin(), c.top.begin() + static_cast<long>(std::min(k, c.top.size())));
        for (int32_t tr : p.req.params.tracked_token_ids) {
          double pr = tr == kYes ? c.p_yes : tr == kNo ? c.p_no : 0.0;
          lp.tracked.push_back(static_cast<float>(std::log(pr)));
        }
        s.logprobs.push_back(lp);
      }
      out.samples.push_back(std::move(s));
    }
    seen.push_back(p.req.prompt_ids);
    p.cb(std::move(out));
    return true;
  }
  void run_until_idle() { while (poll()) {} }
  void cancel(uint64_t) {}
};

struct FakeCodeResult {
  std::string output;
  bool ok = true;
  bool timed_out = false;
  bool state_reset = false;
  double seconds = 0.01;
};

/// Runs a toy language: `name = value`, `print(name)`, `print("text")`, `raise Type('msg')`,
/// `sleep` (times out). One namespace per session.
struct FakeExecutor {
  std::map<int, std::map<std::string, std::string>> sessions;
  std::vector<std::pair<int, std::string>> runs;  // (session, code) in execution order
  std::deque<std::pair<FakeCodeResult, std::function<void(FakeCodeResult)>>> ready;
  int next = 1, opened = 0, closed = 0;

  int open_session() { ++opened; sessions[next]; return next++; }
  void close_session(int id) { ++closed; sessions.erase(id); }

  FakeCodeResult run(int session, const std::string& code) {
    runs.emplace_back(session, code);
    auto& ns = sessions.at(session);
    FakeCodeResult r;
    std::string out;
    size_t pos = 0;
    while (pos <= code.size()) {
      size_t e = code.find('\n', pos);
      std::string line = code.substr(pos, e == std::string::npos ? std::string::npos : e - pos);
      pos = e == std::string::npos ? code.size() + 1 : e + 1;
      if (line.empty()) continue;
      if (line == "sleep") {
        r.ok = false; r.timed_out = true;
        r.output = "Code execute time out: Code execution timed out";
        return r;
      }
      if (line.rfind("raise ", 0) == 0) {
        size_t q = line.find('(');
        std::string type = line.substr(6, q - 6);
        std::string msg = line.substr(q + 2, line.size() - q - 4);
        r.ok = false;
        r.output = "Code execute Error: " + type + ": " + msg;
        return r;
      }
      if (line.rfind("print(", 0) == 0) {
        std::string arg = line.substr(6, line.size() - 7);
        if (!arg.empty() && arg[0] == '"') { out += arg.substr(1, arg.size() - 2) + "\n"; continue; }
        auto it = ns.find(arg);
        if (it == ns.end()) {
          r.ok = false;
          r.output = "Code execute Error: NameError: name '" + arg + "' is not defined";
          return r;
        }
        out += it->second + "\n";
        continue;
      }
      size_t eq = line.find(" = ");
      if (eq != std::string::npos) ns[line.substr(0, eq)] = line.substr(eq + 3);
    }
    r.output = py_strip(out);
    return r;
  }

  void submit(int session, std::string code, std::function<void(FakeCodeResult)> cb) {
    ready.emplace_back(run(session, code), std::move(cb));
  }
  bool poll() {
    if (ready.empty()) return false;
    auto item = std::move(ready.front());
    ready.pop_front();
    item.second(item.first);
    return true;
  }
};

}  // namespace prmtest
