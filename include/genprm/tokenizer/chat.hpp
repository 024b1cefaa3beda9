#pragma once
// Chat formats GenPRM needs, rendered natively (no Jinja in C++):
//  - DeepSeek-R1 (DeepSeek-R1-Distill-Qwen, GenPRM): bos + last system prompt, then
//    "<｜User｜>" + user, "<｜Assistant｜>" + (assistant text after the last "</think>") +
//    "<｜end▁of▁sentence｜>"; generation prompt "<｜Assistant｜><think>\n" (or "<｜Assistant｜>"
//    for templates without the think prefix).
//  - ChatML (Qwen2/2.5/3): "<|im_start|>{role}\n{content}<|im_end|>\n"; a default system prompt
//    when the template has one (Qwen2.5: "You are Qwen, ...", Qwen2.5-Math: "Please reason step
//    by step, ..."); Qwen3-style reasoning handling of assistant turns when the template mentions
//    `reasoning_content`.
// The family is detected from tokenizer_config.json's chat_template (ChatFormat::detect) or named
// explicitly (ChatFormat::deepseek_r1(), ChatFormat::chatml()). Anything else is
// ChatFamily::kUnknown: C++ refuses it with a message explaining how to pass a pre-rendered
// prompt; Python renders it with jinja2 from the template itself.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "genprm/util/error.hpp"

namespace genprm {

struct ChatMessage {
  std::string role;
  std::string content;
};

enum class ChatFamily { kNone, kDeepSeekR1, kChatML, kUnknown };

inline const char* chat_family_name(ChatFamily f) {
  switch (f) {
    case ChatFamily::kNone: return "none";
    case ChatFamily::kDeepSeekR1: return "deepseek_r1";
    case ChatFamily::kChatML: return "chatml";
    default: return "unknown";
  }
}

namespace chat_detail {

inline bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

inline std::string_view strip_chars(std::string_view s, char c, bool left, bool right) {
  while (left && !s.empty() && s.front() == c) s.remove_prefix(1);
  while (right && !s.empty() && s.back() == c) s.remove_suffix(1);
  return s;
}

/// Python's s.split(sep)[-1] and s.split(sep)[0].
inline std::string_view after_last(std::string_view s, std::string_view sep) {
  const size_t p = s.rfind(sep);
  return p == std::string_view::npos ? s : s.substr(p + sep.size());
}
inline std::string_view before_first(std::string_view s, std::string_view sep) {
  const size_t p = s.find(sep);
  return p == std::string_view::npos ? s : s.substr(0, p);
}

/// Unescapes a Jinja (Python-style) string literal body: \n \t \r \\ \' \".
inline std::string unescape_literal(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[++i];
      switch (c) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        default: out.push_back(c); break;
      }
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

/// The literal default system prompt of a ChatML template: the first
/// '<|im_start|>system\n<literal text><|im_end|>' with no expression inside.
inline std::string find_default_system(std::string_view tpl, bool* found) {
  *found = false;
  for (std::string_view head : {std::string_view("<|im_start|>system\\n"), std::string_view("<|im_start|>system\n")}) {
    size_t pos = 0;
    while ((pos = tpl.find(head, pos)) != std::string_view::npos) {
      const size_t start = pos + head.size();
      const size_t end = tpl.find("<|im_end|>", start);
      pos = start;
      if (end == std::string_view::npos) break;
      const std::string_view body = tpl.substr(start, end - start);
      if (body.empty() || contains(body, "'") || contains(body, "\"") || contains(body, "{{") ||
          contains(body, "{%") || contains(body, "+"))
        continue;
      *found = true;
      return unescape_literal(body);
    }
  }
  return {};
}

}  // namespace chat_detail

/// How to render a conversation. Cheap to copy.
struct ChatFormat {
  ChatFamily family = ChatFamily::kNone;
  std::string bos_token;            // DeepSeek-R1: put first
  std::string eos_token;            // DeepSeek-R1: closes assistant turns
  bool think_generation_prompt = true;  // DeepSeek-R1: "<｜Assistant｜><think>\n"
  bool has_default_system = false;  // ChatML: system turn used when messages[0] is not system
  std::string default_system;
  bool qwen3_reasoning = false;     // ChatML: Qwen3 handling of <think> in assistant turns
  std::string source;               // where it came from (for error messages)

  static ChatFormat deepseek_r1(std::string bos = "<｜begin▁of▁sentence｜>",
                                std::string eos = "<｜end▁of▁sentence｜>", bool think_prompt = true) {
    ChatFormat f;
    f.family = ChatFamily::kDeepSeekR1;
    f.bos_token = std::move(bos);
    f.eos_token = std::move(eos);
    f.think_generation_prompt = think_prompt;
    f.source = "ChatFormat::deepseek_r1()";
    return f;
  }
  static ChatFormat chatml(std::string default_system = {}, bool qwen3_reasoning = false) {
    ChatFormat f;
    f.family = ChatFamily::kChatML;
    f.has_default_system = !default_system.empty();
    f.default_system = std::move(default_system);
    f.qwen3_reasoning = qwen3_reasoning;
    f.source = "ChatFormat::chatml()";
    return f;
  }

  /// Detects the family of a Jinja chat template (tokenizer_config.json's chat_template).
  /// `bos`/`eos` are the config's bos_token/eos_token strings; `source` names the file.
  static ChatFormat detect(std::string_view tpl, const std::string& bos, const std::string& eos,
                           const std::string& source) {
    using chat_detail::contains;
    ChatFormat f;
    f.source = source;
    if (tpl.empty()) {
      f.family = ChatFamily::kNone;
      return f;
    }
    if (contains(tpl, "<｜User｜>") && contains(tpl, "<｜Assistant｜>")) {
      f.family = ChatFamily::kDeepSeekR1;
      f.bos_token = contains(tpl, "bos_token") ? bos : std::string();
      f.eos_token = contains(tpl, "<｜end▁of▁sentence｜>") ? std::string("<｜end▁of▁sentence｜>") : eos;
      f.think_generation_prompt =
          contains(tpl, "<｜Assistant｜><think>\\n") || contains(tpl, "<｜Assistant｜><think>\n");
      return f;
    }
    if (contains(tpl, "<|im_start|>") && contains(tpl, "<|im_end|>")) {
      f.family = ChatFamily::kChatML;
      f.default_system = chat_detail::find_default_system(tpl, &f.has_default_system);
      f.qwen3_reasoning = contains(tpl, "reasoning_content");
      return f;
    }
    f.family = ChatFamily::kUnknown;
    return f;
  }
};

/// Renders `messages` in format `fmt`. Throws ValueError for kNone/kUnknown formats and for
/// roles the format does not know, saying how to pass a pre-rendered prompt instead.
inline std::string render_chat(const ChatFormat& fmt, const std::vector<ChatMessage>& messages,
                               bool add_generation_prompt) {
  using namespace chat_detail;
  const char* how =
      "render the prompt yourself (for example with the model's Jinja template in Python: "
      "genprm.Tokenizer.apply_chat_template falls back to jinja2) and pass the text to "
      "Tokenizer::encode() as a pre-rendered prompt, or name a known format explicitly with "
      "apply_chat_template(messages, add_generation_prompt, ChatFormat::deepseek_r1() / "
      "ChatFormat::chatml())";
  if (fmt.family == ChatFamily::kNone)
    throw ValueError(fmt::format("{}: no chat template; {}", fmt.source, how));
  if (fmt.family == ChatFamily::kUnknown)
    throw ValueError(fmt::format(
        "{}: chat_template is of an unknown family (C++ renders DeepSeek-R1 and ChatML only); {}",
        fmt.source, how));
  std::string out;
  if (fmt.family == ChatFamily::kDeepSeekR1) {
    std::string_view system;
    for (const auto& m : messages) {
      GENPRM_CHECK_ARG(m.role == "system" || m.role == "user" || m.role == "assistant",
                       "apply_chat_template: role '{}' is not supported by the DeepSeek-R1 format "
                       "(system, user, assistant); {}", m.role, how);
      if (m.role == "system") system = m.content;
    }
    out += fmt.bos_token;
    out += system;
    for (const auto& m : messages) {
      if (m.role == "user") {
        out += "<｜User｜>";
        out += m.content;
      } else if (m.role == "assistant") {
        out += "<｜Assistant｜>";
        out += after_last(m.content, "</think>");
        out += fmt.eos_token;
      }
    }
    if (add_generation_prompt) out += fmt.think_generation_prompt ? "<｜Assistant｜><think>\n" : "<｜Assistant｜>";
    return out;
  }
  // ChatML
  for (const auto& m : messages)
    GENPRM_CHECK_ARG(m.role == "system" || m.role == "user" || m.role == "assistant",
                     "apply_chat_template: role '{}' is not supported by the ChatML format "
                     "(system, user, assistant); {}", m.role, how);
  if (fmt.has_default_system && (messages.empty() || messages[0].role != "system")) {
    out += "<|im_start|>system\n";
    out += fmt.default_system;
    out += "<|im_end|>\n";
  }
  // Qwen3: reasoning is kept only for assistant turns after the last user query.
  size_t last_query = messages.empty() ? 0 : messages.size() - 1;
  if (fmt.qwen3_reasoning) {
    for (size_t k = messages.size(); k-- > 0;) {
      const auto& m = messages[k];
      const bool tool_response = m.content.rfind("<tool_response>", 0) == 0 &&
                                 m.content.size() >= 16 &&
                                 m.content.compare(m.content.size() - 16, 16, "</tool_response>") == 0;
      if (m.role == "user" && !tool_response) {
        last_query = k;
        break;
      }
    }
  }
  for (size_t k = 0; k < messages.size(); ++k) {
    const auto& m = messages[k];
    if (m.role != "assistant" || !fmt.qwen3_reasoning) {
      out += "<|im_start|>";
      out += m.role;
      out += "\n";
      out += m.content;
      out += "<|im_end|>\n";
      continue;
    }
    std::string_view content = m.content;
    std::string_view reasoning;
    if (contains(content, "</think>")) {
      const std::string_view full = m.content;
      content = strip_chars(after_last(full, "</think>"), '\n', true, false);
      reasoning = strip_chars(after_last(strip_chars(before_first(full, "</think>"), '\n', false, true), "<think>"),
                              '\n', true, false);
    }
    out += "<|im_start|>assistant\n";
    const bool last = k + 1 == messages.size();
    if (k > last_query && (last || !reasoning.empty())) {
      out += "<think>\n";
      out += strip_chars(reasoning, '\n', true, true);
      out += "\n</think>\n\n";
      out += strip_chars(content, '\n', true, false);
    } else {
      out += content;
    }
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

/// The conversation of a policy prompt: [system (when given), user = problem]. Rendered with the
/// generation prompt it is what the policy answers (RPE sampling and labelling, search's
/// default_prompt in Python).
inline std::vector<ChatMessage> problem_conversation(const std::string& problem,
                                                     const std::optional<std::string>& system = std::nullopt) {
  std::vector<ChatMessage> msgs;
  if (system) msgs.push_back({"system", *system});
  msgs.push_back({"user", problem});
  return msgs;
}

}  // namespace genprm
