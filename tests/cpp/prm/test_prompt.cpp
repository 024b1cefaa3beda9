// GenPRM step prompts are byte-identical to the reference: the rendered text equals the
// genprm_step1/genprm_step2 rows of tests/data/chat_golden.jsonl (made with HF
// apply_chat_template + build_prompt), and so do the token ids with the real tokenizer.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "doubles.hpp"
#include "genprm/prm/prompt.hpp"
#include "genprm/util/json.hpp"

using namespace genprm;
using namespace genprm::prm;

namespace {

Json golden_row(const std::string& name) {
  std::ifstream in(std::string(GENPRM_TEST_DATA) + "/chat_golden.jsonl");
  REQUIRE(in.good());
  std::string line;
  while (std::getline(in, line)) {
    Json j = Json::parse(line);
    if (j["name"] == name) return j;
  }
  FAIL("no row " << name);
  return {};
}

/// Rebuilds (problem, steps, assistant texts) from a golden conversation.
struct GoldenCase {
  std::string problem;
  std::vector<std::string> steps;
  std::vector<std::string> assistant;
  int t = 0;
};

GoldenCase golden_case(const Json& row) {
  GoldenCase g;
  for (const auto& m : row["messages"]) {
    std::string role = m["role"], content = m["content"];
    if (role == "user") g.steps.push_back(content);
    if (role == "assistant") g.assistant.push_back(content);
  }
  // User turn 1 is problem + "\n" + paragraph 1.
  size_t k = g.steps[0].find("\n\n");
  REQUIRE(k != std::string::npos);
  g.problem = g.steps[0].substr(0, k + 1);
  g.steps[0] = g.steps[0].substr(k + 2);
  g.t = static_cast<int>(g.steps.size());
  return g;
}

}  // namespace

TEST_CASE("step prompts match the golden text (R1-Distill template: genprm::render_chat)") {
  VerifierConfig cfg;
  for (std::string name : {"genprm_step1", "genprm_step2"}) {
    Json row = golden_row(name);
    GoldenCase g = golden_case(row);
    std::string prompt = step_prompt(prmtest::render_r1, prmtest::kEos, cfg, g.problem, g.steps,
                                     g.assistant, g.t);
    CHECK(prompt == row["text"].get<std::string>());
  }
}

TEST_CASE("the trailing end-of-sentence token is removed as build_prompt does") {
  CHECK(strip_trailing_eos("abc<eos>\n", "<eos>") == "abc");
  CHECK(strip_trailing_eos("abc<eos>", "<eos>") == "abc");
  CHECK(strip_trailing_eos("abc<eos>x", "<eos>") == "abc<eos>x");
  CHECK(strip_trailing_eos("abc", "") == "abc");
}

TEST_CASE("conversation: problem joined to paragraph 1, assistant turns between user turns") {
  VerifierConfig cfg;
  auto turns = step_conversation(cfg, "P", {"s1", "s2", "s3"}, {"v1", "v2"}, 3);
  REQUIRE(turns.size() == 6);
  CHECK(turns[1].content == "P\ns1");
  CHECK(turns[2].role == "assistant");
  CHECK(turns[4].content == "v2");
  CHECK(turns[5].content == "s3");
  CHECK_THROWS_AS(step_conversation(cfg, "P", {"s1"}, {}, 2), ValueError);
  CHECK(effective_steps({"a", ""}) == std::vector<std::string>{"a"});
}

#include "genprm/prm/tokenizer_ops.hpp"

TEST_CASE("step prompts tokenize to the golden ids with the R1-Distill tokenizer") {
  Tokenizer tok = Tokenizer::from_pretrained(std::string(GENPRM_TEST_DATA) + "/r1distill_tokenizer");
  TokenizerOps ops = make_tokenizer_ops(tok);
  CHECK(ops.yes_id == 9454);
  CHECK(ops.no_id == 2753);
  CHECK(ops.eos_token == "<｜end▁of▁sentence｜>");
  VerifierConfig cfg;
  for (std::string name : {"genprm_step1", "genprm_step2"}) {
    Json row = golden_row(name);
    GoldenCase g = golden_case(row);
    std::string prompt = step_prompt(ops.render_chat, ops.eos_token, cfg, g.problem, g.steps, g.assistant, g.t);
    CHECK(prompt == row["text"].get<std::string>());
    CHECK(ops.encode(prompt) == row["ids"].get<std::vector<int32_t>>());
  }
}

TEST_CASE("judgement position with the real tokenizer: the `Yes` token after `{`") {
  Tokenizer tok = Tokenizer::from_pretrained(std::string(GENPRM_TEST_DATA) + "/r1distill_tokenizer");
  TokenizerOps ops = make_tokenizer_ops(tok);
  for (std::string context : {std::string("<analyze>\nok\n</analyze>\n<output>\n**Judgement**: $\\boxed"),
                              std::string("<verify>\n")}) {
    SampleOutput s;
    s.text = context.back() == 'd' ? "{No}$\n</output>\n"
                                   : "</verify>\n<output>\n**Judgement**: $\\boxed{No}$\n</output>\n";
    s.token_ids = ops.encode(s.text);
    for (int32_t id : s.token_ids) {
      TokenLogprobs lp;
      lp.tracked = {id == ops.no_id ? -2.0f : -9.0f, id == ops.no_id ? -1.0f : -9.0f};
      s.logprobs.push_back(lp);
    }
    Judgement j = read_judgement(context, s, ops.decode);
    REQUIRE(j.found);
    CHECK(s.token_ids[static_cast<size_t>(j.position)] == ops.no_id);
    CHECK(j.sampled == "No");
    CHECK(j.reward == doctest::Approx(1.0 / (1.0 + std::exp(1.0))));
  }
}
