#pragma once
// A scripted Generator for the rpe tests: byte-level "tokens", a radix-cache imitation for
// cached_prompt_tokens, FIFO processing of one request per poll(), and cancel() that calls back
// with finish_reason "abort" (as the engine does). Completions come from a script of the prompt,
// the sample index and how many requests of that prompt came before.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "genprm/gen/request.hpp"

namespace rpetest {

using namespace genprm;

inline std::vector<int32_t> bytes_of(const std::string& s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) ids.push_back(c);
  return ids;
}

inline const std::string kChatOpen = "<user>";
inline const std::string kChatClose = "</user><assistant>";
inline std::string render(const std::string& problem) { return kChatOpen + problem + kChatClose; }

struct ScriptedGenerator {
  /// completion text for (prompt text, sample index, earlier requests of the same prompt)
  using Script = std::function<std::string(const std::string& prompt, int sample, int repeat)>;
  Script script;
  /// When set, used instead of `script`: completion text for (request, sample index).
  std::function<std::string(const GenerationRequest&, int sample)> request_script;
  struct Pending {
    uint64_t id;
    GenerationRequest req;
    GenerationCallback cb;
    bool cancelled = false;
  };
  std::deque<Pending> pending;
  std::vector<GenerationRequest> log;  // every request, in submission order
  std::set<uint64_t> cancelled_ids;
  std::map<std::string, int> repeats;
  std::vector<std::vector<int32_t>> seen;
  uint64_t next_id = 1;
  size_t max_pending = 0;
  std::string fail_prompt_containing;  // requests whose prompt contains this come back with an error
  std::function<void()> on_poll;       // observation hook (runs at the start of each poll)
  bool imitate_cache = true;           // false: cached_prompt_tokens stays 0 (long runs: no quadratic scan)

  uint64_t submit(GenerationRequest req, GenerationCallback cb) {
    log.push_back(req);
    pending.push_back({next_id, std::move(req), std::move(cb)});
    max_pending = std::max(max_pending, pending.size());
    return next_id++;
  }

  void cancel(uint64_t id) {
    cancelled_ids.insert(id);
    for (auto& p : pending)
      if (p.id == id) p.cancelled = true;
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
    if (on_poll) on_poll();
    if (pending.empty()) return false;
    Pending p = std::move(pending.front());
    pending.pop_front();
    GenerationOutput out;
    out.request_id = p.id;
    out.prompt_ids = bytes_of(p.req.prompt_text);
    out.cached_prompt_tokens = imitate_cache ? longest_cached(out.prompt_ids) : 0;
    const int repeat = repeats[p.req.prompt_text]++;
    if (!fail_prompt_containing.empty() && p.req.prompt_text.find(fail_prompt_containing) != std::string::npos) {
      out.error = "scripted failure";
    } else {
      for (int i = 0; i < p.req.n; ++i) {
        SampleOutput s;
        if (p.cancelled) {
          s.finish_reason = "abort";
        } else {
          s.text = request_script ? request_script(p.req, i) : script(p.req.prompt_text, i, repeat);
          s.token_ids = bytes_of(s.text);
          s.finish_reason = "stop";
        }
        out.samples.push_back(std::move(s));
      }
    }
    if (imitate_cache) seen.push_back(out.prompt_ids);
    p.cb(std::move(out));
    return !pending.empty();
  }
  void run_until_idle() {
    while (poll()) {
    }
  }

  /// Requests whose prompt is exactly `prompt`.
  std::vector<GenerationRequest> requests_for(const std::string& prompt) const {
    std::vector<GenerationRequest> r;
    for (const auto& q : log)
      if (q.prompt_text == prompt) r.push_back(q);
    return r;
  }
};

inline std::string boxed(const std::string& x) { return "so the answer is \\boxed{" + x + "}."; }

}  // namespace rpetest
