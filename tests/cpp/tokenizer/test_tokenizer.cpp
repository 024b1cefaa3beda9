// Tokenizer: Hugging Face fixtures (ids and decoded text), chat formats, streaming decode,
// invalid UTF-8 and malformed tokenizer.json handling.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "genprm/tokenizer/tokenizer.hpp"
#include "genprm/util/json.hpp"

using genprm::ChatMessage;
using genprm::Json;
using genprm::Tokenizer;

namespace {

const std::string kData = GENPRM_TEST_DATA;

const Tokenizer& qwen() {
  static const Tokenizer t = Tokenizer::from_pretrained(kData + "/qwen_tokenizer");
  return t;
}
const Tokenizer& r1() {
  static const Tokenizer t = Tokenizer::from_pretrained(kData + "/r1distill_tokenizer");
  return t;
}

std::vector<Json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<Json> rows;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(Json::parse(line));
  return rows;
}

std::vector<std::string> pieces(const std::string& text) {
  std::vector<std::string> out;
  genprm::pretok::for_each_piece(text, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}

std::string write_temp(const std::string& name, const std::string& content) {
  const std::string path = "/tmp/genprm_test_tok_" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

/// A small byte-level BPE tokenizer.json: the 256 byte tokens, merges h+e, l+l, he+ll, one
/// special added token.
Json tiny_tokenizer_json() {
  Json vocab = Json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    genprm::unicode::append_utf8(ch, genprm::tok_detail::byte_to_char()[size_t(b)]);
    vocab[ch] = id++;
  }
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["hell"] = 258;
  Json j;
  j["version"] = "1.0";
  j["added_tokens"] = Json::parse(R"([{"id":259,"content":"<s>","single_word":false,"lstrip":false,
      "rstrip":false,"normalized":false,"special":true}])");
  j["normalizer"] = Json{{"type", "NFC"}};
  j["pre_tokenizer"] = Json::parse(R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":""},
      "behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,
      "use_regex":false}]})");
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = std::string(genprm::kQwen2SplitPattern);
  j["post_processor"] = Json{{"type", "ByteLevel"}};
  j["decoder"] = Json{{"type", "ByteLevel"}};
  j["model"] = Json{{"type", "BPE"}, {"vocab", vocab}, {"merges", Json::array({"h e", "l l", "he ll"})}};
  return j;
}

}  // namespace

TEST_CASE("a small tokenizer.json: merges by rank, pair-form merges, added token split") {
  Json j = tiny_tokenizer_json();
  const Tokenizer t = Tokenizer::from_file(write_temp("tiny.json", j.dump()));
  CHECK(t.encode("hello") == std::vector<int32_t>{258, 'o'});
  CHECK(t.encode("hello<s>he") == std::vector<int32_t>{258, 'o', 259, 256});
  CHECK(t.vocab_size() == 260);
  j["model"]["merges"] = Json::parse(R"([["l","l"],["h","e"],["he","ll"]])");
  const Tokenizer t2 = Tokenizer::from_file(write_temp("tiny_pairs.json", j.dump()));
  CHECK(t2.encode("hello") == std::vector<int32_t>{258, 'o'});
  j["model"]["merges"] = Json::parse(R"([["he","ll"]])");  // "he" is never formed: no merge applies
  const Tokenizer t3 = Tokenizer::from_file(write_temp("tiny_nomerge.json", j.dump()));
  CHECK(t3.encode("hello") == std::vector<int32_t>{'h', 'e', 'l', 'l', 'o'});
  // A pair listed twice keeps its last rank (tokenizers collects merges into a HashMap).
  j = tiny_tokenizer_json();
  j["model"]["vocab"]["el"] = 300;
  j["model"]["merges"] = Json::array({"e l", "h e", "l l", "he ll", "e l"});
  const Tokenizer t4 = Tokenizer::from_file(write_temp("tiny_dup.json", j.dump()));
  CHECK(t4.encode("hello") == std::vector<int32_t>{258, 'o'});
  CHECK(t4.encode("<s>") == std::vector<int32_t>{260});  // added ids follow the model size (260 entries)
}

TEST_CASE("tokenizer_public.jsonl: ids and decoded text match Hugging Face exactly") {
  const auto rows = read_jsonl(kData + "/tokenizer_public.jsonl");
  REQUIRE(rows.size() >= 50);
  for (const auto& row : rows) {
    const std::string text = row["text"];
    const auto want = row["ids"].get<std::vector<int32_t>>();
    CAPTURE(text);
    CHECK(qwen().encode(text) == want);
    CHECK(qwen().decode(want) == row["decoded"].get<std::string>());
  }
}

TEST_CASE("chat_golden.jsonl: rendered text and ids match transformers' apply_chat_template") {
  const auto rows = read_jsonl(kData + "/chat_golden.jsonl");
  REQUIRE(rows.size() == 14);
  for (const auto& row : rows) {
    const std::string name = row["name"];
    const bool gen = row["add_generation_prompt"];
    CAPTURE(name);
    CAPTURE(gen);
    const Tokenizer& tok = name.rfind("chatml", 0) == 0 ? qwen() : r1();
    std::vector<ChatMessage> msgs;
    for (const auto& m : row["messages"]) msgs.push_back({m["role"], m["content"]});
    std::string text;
    if (name.rfind("genprm_step", 0) == 0) {
      // GenPRM step prompt: template without generation prompt, trailing EOS removed, analyze prefix.
      text = tok.apply_chat_template(msgs, false);
      const std::string& eos = tok.eos_token();
      if (text.size() >= eos.size() && text.compare(text.size() - eos.size(), eos.size(), eos) == 0)
        text.resize(text.size() - eos.size());
      const int step = name == "genprm_step1" ? 1 : 2;
      text += "<analyze>\nLet's analyze the Paragraph " + std::to_string(step) + " step by step: ";
    } else {
      text = tok.apply_chat_template(msgs, gen);
    }
    CHECK(text == row["text"].get<std::string>());
    CHECK(tok.encode(text) == row["ids"].get<std::vector<int32_t>>());
  }
}

TEST_CASE("chat families are detected from tokenizer_config.json") {
  CHECK(r1().chat_format().family == genprm::ChatFamily::kDeepSeekR1);
  CHECK(qwen().chat_format().family == genprm::ChatFamily::kChatML);
  CHECK(qwen().chat_format().qwen3_reasoning);
  CHECK_FALSE(qwen().chat_format().has_default_system);
  CHECK(r1().bos_token_id() == 151646);
  CHECK(r1().eos_token_id() == 151643);
  CHECK(qwen().eos_token_id() == 151645);
  CHECK_FALSE(qwen().bos_token_id().has_value());

  // The R1 template drops everything up to the last </think> in assistant turns.
  std::vector<ChatMessage> m = {{"user", "q"}, {"assistant", "<think>a</think>b</think>c"}};
  CHECK(r1().apply_chat_template(m) == "<｜begin▁of▁sentence｜><｜User｜>q<｜Assistant｜>c<｜end▁of▁sentence｜>");
  // The policy prompt's conversation: [system?, user = problem].
  CHECK(r1().apply_chat_template(genprm::problem_conversation("q", std::string("s")), true) ==
        "<｜begin▁of▁sentence｜>s<｜User｜>q<｜Assistant｜><think>\n");
  CHECK(genprm::problem_conversation("q").size() == 1);

  // A Qwen2.5-style template's literal default system prompt is found.
  const std::string tpl =
      "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
      "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nPlease reason step by step, and put your final "
      "answer within \\\\boxed{}.<|im_end|>\\n' }}{%- endif %}";
  const auto f = genprm::ChatFormat::detect(tpl, "", "<|im_end|>", "test");
  CHECK(f.family == genprm::ChatFamily::kChatML);
  REQUIRE(f.has_default_system);
  CHECK(f.default_system == "Please reason step by step, and put your final answer within \\boxed{}.");
  CHECK(genprm::render_chat(f, {{"user", "1+1?"}}, true) ==
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("unknown chat template family: a clear error that says how to pass a pre-rendered prompt") {
  const auto f = genprm::ChatFormat::detect("{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}",
                                            "<s>", "</s>", "model/tokenizer_config.json");
  CHECK(f.family == genprm::ChatFamily::kUnknown);
  try {
    qwen().apply_chat_template({{"user", "hi"}}, false, f);
    FAIL("expected ValueError");
  } catch (const genprm::ValueError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("model/tokenizer_config.json") != std::string::npos);
    CHECK(msg.find("unknown family") != std::string::npos);
    CHECK(msg.find("pre-rendered prompt") != std::string::npos);
    CHECK(msg.find("encode()") != std::string::npos);
  }
  // from_file has no tokenizer_config.json: no template at all.
  const Tokenizer bare = Tokenizer::from_file(kData + "/qwen_tokenizer/tokenizer.json");
  CHECK_THROWS_AS(bare.apply_chat_template({{"user", "hi"}}), genprm::ValueError);
  // Explicitly named formats work without a config.
  CHECK(bare.apply_chat_template({{"user", "hi"}}, true, genprm::ChatFormat::chatml()) ==
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  CHECK_THROWS_AS(qwen().apply_chat_template({{"tool", "x"}}), genprm::ValueError);
}

TEST_CASE("pre-tokenizer pieces follow the Qwen2 pattern (table from Hugging Face)") {
  struct Row {
    std::string text;
    std::vector<std::string> want;
  };
  const std::vector<Row> rows = {
      {"'ſx", {"'ſ", "x"}},                                  // (?i) folds U+017F to s
      {"x'STx", {"x", "'S", "Tx"}},                          // case-insensitive contraction
      {"don't", {"don", "'t"}},
      {"'ll 'LL 're", {"'ll", " '", "LL", " '", "re"}},
      {"\u00a0\u00a0x", {"\u00a0", "\u00a0x"}},             // NBSP is \s
      {"a\u0085\u0085b", {"a", "\u0085", "\u0085b"}},       // NEL is \s
      {"a\u200b\u200bb", {"a", "\u200b\u200b", "b"}},       // ZWSP is not
      {"  \n  x", {"  \n", " ", " x"}},                      // \s*[\r\n]+ then \s+(?!\S)
      {"x\u2028\u2029y", {"x", "\u2028", "\u2029y"}},
      {"\x1c\x1dx", {"\x1c\x1d", "x"}},                      // C0 separators are not \s
      {"a \u3000 b", {"a", " \u3000", " b"}},
      {"12 345", {"1", "2", " ", "3", "4", "5"}},
      {"x  ", {"x", "  "}},                                  // whitespace at the end
      {"a.\n\nb", {"a", ".\n\n", "b"}},
      {" (x)", {" (", "x", ")"}},
      {"\\frac{1}{2}", {"\\frac", "{", "1", "}{", "2", "}"}},
  };
  for (const auto& r : rows) {
    CAPTURE(r.text);
    CHECK(pieces(r.text) == r.want);
  }
}

TEST_CASE("NFC: decomposed input is composed before BPE; quick check leaves NFC text alone") {
  CHECK(qwen().encode("e\u0301") == qwen().encode("\u00e9"));
  CHECK(qwen().decode(qwen().encode("e\u0301")) == "\u00e9");
  CHECK(qwen().decode(qwen().encode("e\u0301\u0323 x")) == "\u1eb9\u0301 x");  // reorder, then compose
  CHECK(qwen().decode(qwen().encode("e\u0323\u0302")) == "\u1ec7");
  CHECK(qwen().decode(qwen().encode("\u212b")) == "\u00c5");                // singleton
  CHECK(qwen().decode(qwen().encode("\u1100\u1161\u11a8")) == "\uac01");    // Hangul jamo
  std::string scratch;
  const std::string nfc_text = "Caf\u00e9 \u4f60\u597d \U0001F600";
  CHECK(genprm::unicode::nfc(nfc_text, scratch).data() == nfc_text.data());  // no copy
}

TEST_CASE("invalid UTF-8: each maximal ill-formed subsequence becomes U+FFFD (documented policy)") {
  const std::string rep = "\xEF\xBF\xBD";
  CHECK(genprm::unicode::utf8_lossy("a\xFF" "b") == "a" + rep + "b");
  CHECK(genprm::unicode::utf8_lossy("\xE4\xBD") == rep);                    // truncated: one U+FFFD
  CHECK(genprm::unicode::utf8_lossy("\xE4\xBD" "a") == rep + "a");
  CHECK(genprm::unicode::utf8_lossy("\xED\xA0\x80") == rep + rep + rep);    // surrogate: three
  CHECK(genprm::unicode::utf8_lossy("\xF0\x9F\x98") == rep);
  CHECK(genprm::unicode::utf8_lossy("\xC0\xAF") == rep + rep);              // overlong
  CHECK(qwen().encode("x\xFFy") == qwen().encode("x" + rep + "y"));
  CHECK(qwen().encode("\xE4\xBD") == qwen().encode(rep));
  // decode: a lone lead byte of a multi-byte character.
  const int32_t e4 = *qwen().token_to_id("\xC3\xA4");  // byte-level char for 0xE4 is U+00E4
  CHECK(qwen().decode({e4}) == rep);
  CHECK(qwen().decode({e4, *qwen().token_to_id("<think>")}) == rep + "<think>");
}

TEST_CASE("decode: added tokens verbatim, special ones skippable, unknown ids skipped") {
  const auto ids = qwen().encode("<|im_start|>user\nhi<|im_end|>");
  CHECK(ids.front() == 151644);
  CHECK(qwen().decode(ids) == "<|im_start|>user\nhi<|im_end|>");
  CHECK(qwen().decode(ids, true) == "user\nhi");
  CHECK(qwen().is_special(151644));
  CHECK_FALSE(qwen().is_special(151667));  // <think> is added but not special
  CHECK(qwen().decode({151667}, true) == "<think>");
  CHECK(qwen().decode({9707, 151935, 999999, -1}) == "Hello");
  CHECK(qwen().vocab_size() == 151669);
  CHECK(qwen().token_to_id("<|im_end|>") == 151645);
  CHECK(qwen().token_to_id("\xC4\xA0the") == 279);  // "Ġthe"
  CHECK(qwen().id_to_token(279) == "\xC4\xA0the");
  CHECK_THROWS_AS(qwen().id_to_token(151935), genprm::ValueError);
  CHECK_FALSE(qwen().token_to_id("not a token").has_value());
}

TEST_CASE("BPE: the long-word heap path and the small-word array path agree") {
  std::mt19937 rng(7);
  const std::vector<std::string> alphabet = {"a", "b", "e", "th", " ", "\xE4\xBD\xA0", "1", "ing", "\xF0\x9F\x98\x80", "."};
  for (int trial = 0; trial < 300; ++trial) {
    std::string w;
    const int len = 1 + int(rng() % 40);
    for (int k = 0; k < len; ++k) w += alphabet[rng() % alphabet.size()];
    if (w.size() > 96) w.resize(96);
    CAPTURE(w);
    CHECK(qwen().bpe_word_ids(w) == qwen().bpe_word_ids(w, true));
  }
  std::string word;
  for (int i = 0; i < 200; ++i) word += "abc";
  CHECK(qwen().decode(qwen().encode(word)) == word);
}

TEST_CASE("StreamDecoder: chunks never split a character and add up to decode()") {
  std::mt19937 rng(11);
  const std::vector<std::string> samples = {
      "Hello, world! \xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
      "$\\frac{a}{b}$ \xCE\xB1\xCE\xB2\xCE\xB3 \xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 <think>x</think>"};
  for (bool skip : {false, true}) {
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<int32_t> ids;
      if (trial % 2 == 0) {
        ids = qwen().encode(samples[size_t(trial / 2) % samples.size()]);
      }
      // Random ids, biased towards single-byte tokens and special tokens.
      const int extra = int(rng() % 30);
      for (int k = 0; k < extra; ++k) {
        const uint32_t r = rng() % 10;
        int32_t id;
        if (r < 5) id = int32_t(rng() % 256);  // byte tokens live in the first ids
        else if (r < 7) id = 151643 + int32_t(rng() % 26);
        else id = int32_t(rng() % 151669);
        ids.insert(ids.begin() + std::ptrdiff_t(rng() % (ids.size() + 1)), id);
      }
      genprm::StreamDecoder sd(qwen(), skip);
      std::string total;
      for (int32_t id : ids) {
        const std::string chunk = sd.push(id);
        CHECK(genprm::unicode::is_valid_utf8(chunk));
        total += chunk;
      }
      total += sd.flush();
      CHECK(total == qwen().decode(ids, skip));
    }
  }
}

TEST_CASE("malformed tokenizer.json: clear errors naming the file") {
  const Json base = tiny_tokenizer_json();
  const std::string good = base.dump();
  auto expect_error = [](const std::string& path, const std::string& fragment) {
    try {
      Tokenizer::from_file(path);
      FAIL("expected ValueError for " << path);
    } catch (const genprm::ValueError& e) {
      const std::string msg = e.what();
      CAPTURE(msg);
      CHECK(msg.find(path) != std::string::npos);
      CHECK(msg.find(fragment) != std::string::npos);
    }
  };
  expect_error(write_temp("bad.json", good.substr(0, good.size() / 2)), "invalid JSON");
  Json j = base;
  j["model"].erase("merges");
  expect_error(write_temp("nomerges.json", j.dump()), "merges");
  j = base;
  j["pre_tokenizer"]["pretokenizers"][0]["type"] = "Whitespace";
  expect_error(write_temp("pretok.json", j.dump()), "pre_tokenizer 'Whitespace' is not supported");
  j = base;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+";
  expect_error(write_temp("pattern.json", j.dump()), "not the Qwen2 pattern");
  j = base;
  j["model"]["type"] = "Unigram";
  expect_error(write_temp("unigram.json", j.dump()), "model type 'Unigram' is not supported");
  j = base;
  j["model"]["type"] = "WordPiece";
  expect_error(write_temp("wordpiece.json", j.dump()), "model type 'WordPiece' is not supported");
  j = base;
  j["model"]["merges"][1] = "nosuchtoken xyzzy";
  expect_error(write_temp("badmerge.json", j.dump()), "merge 1");
  j = base;
  j["model"]["merges"][2] = "a b c";
  expect_error(write_temp("badmerge2.json", j.dump()), "merge 2");
  j = base;
  j["model"]["vocab"]["he"] = "x";
  expect_error(write_temp("badvocab.json", j.dump()), "non-integer id");
  j = base;
  j["model"]["vocab"].erase("\xC4\xA0");  // the byte-level character of the space byte
  expect_error(write_temp("nobyte.json", j.dump()), "single-byte token for byte 0x20");
  j = base;
  j["normalizer"] = Json{{"type", "Lowercase"}};
  expect_error(write_temp("norm.json", j.dump()), "normalizer 'Lowercase'");
  j = base;
  j["decoder"] = Json{{"type", "WordPiece"}};
  expect_error(write_temp("decoder.json", j.dump()), "decoder 'WordPiece'");
  expect_error("/nonexistent/tokenizer.json", "cannot open");
}

TEST_CASE("add_special_tokens applies a TemplateProcessing post-processor") {
  Json j = tiny_tokenizer_json();
  j["post_processor"] = Json::parse(R"({"type":"Sequence","processors":[{"type":"ByteLevel"},
      {"type":"TemplateProcessing",
      "single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
      "pair":[], "special_tokens":{"<s>":{"id":"<s>","ids":[259], "tokens":["<s>"]}}}]})");
  const Tokenizer t = Tokenizer::from_file(write_temp("template.json", j.dump()));
  CHECK(t.encode("he", true) == std::vector<int32_t>{259, 256});
  CHECK(t.encode("he", false) == std::vector<int32_t>{256});
  CHECK(qwen().encode("hi", true) == qwen().encode("hi", false));  // ByteLevel post-processor: no-op
}

TEST_CASE("Tokenizer copies share state and work from several threads") {
  const Tokenizer a = qwen();
  const Tokenizer b = a;
  CHECK(&a.chat_format() == &b.chat_format());
  const std::string text = "The quick brown fox \xE4\xBD\xA0\xE5\xA5\xBD 123 \\boxed{x}";
  const auto want = a.encode(text);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 50; ++k) ok[size_t(t)] += b.encode(text) == want;
    });
  for (auto& th : threads) th.join();
  for (int v : ok) CHECK(v == 50);
}
