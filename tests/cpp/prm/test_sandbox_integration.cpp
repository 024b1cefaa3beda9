// The verifier over the real SandboxPool (exec layer), with the scripted generator: code runs in
// Python, errors and timeouts come back in-band, and the namespace of one solution persists
// across its steps while two solutions stay apart.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "doubles.hpp"
#include "genprm/exec/sandbox.hpp"
#include "genprm/prm/verifier.hpp"

using namespace genprm;
using namespace genprm::prm;
using namespace prmtest;

TEST_CASE("verifier with the real sandbox: outputs, errors, timeouts, one namespace per solution") {
  SandboxOptions so;
  so.timeout_s = 1.0;
  so.workers = 2;
  SandboxPool pool(so);
  ScriptedGenerator gen;
  gen.script = [](const std::string& p, int) {
    Continuation c;
    const bool step2 = p.find("Paragraph 2 step by step") != std::string::npos;
    const bool step3 = p.find("Paragraph 3 step by step") != std::string::npos;
    const bool other = p.find("Other problem") != std::string::npos;
    if (ends_with(p, "step by step: ")) {
      c.text = "fine\n</analyze>\n";
    } else if (ends_with(p, "```python\n")) {
      if (step3) c.text = "print('before')\nraise ValueError('bad value')\n```\n";
      else if (!step2) c.text = other ? "total = 1\nprint('other')\n```\n" : "total = 40 + 2\nprint('set')\n```\n";
      else c.text = other ? "import time\ntime.sleep(3)\n```\n" : "print(total)\n```\n";
    } else {
      c.text = "</verify>\n<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n";
    }
    return c;
  };
  VerifierConfig cfg;
  Verifier<ScriptedGenerator, SandboxPool> v(gen, pool, fake_tokenizer(), cfg);
  auto rs = v.verify_many({SolutionInput{"a", "What is 40+2?", {"s1", "s2", "s3"}},
                           SolutionInput{"b", "Other problem", {"t1", "t2"}}});
  REQUIRE(rs.size() == 2);
  const auto& a = rs[0];
  REQUIRE(a.steps[1].paths[0].code.size() == 1);
  CHECK(a.steps[0].paths[0].code[0].output == "set");
  CHECK(a.steps[1].paths[0].code[0].output == "42");  // namespace kept from step 1
  // An exception replaces the block's output (as the reference's CodeExecutor does).
  CHECK(a.steps[2].paths[0].code[0].output == "Code execute Error: ValueError: bad value");
  CHECK_FALSE(a.steps[2].paths[0].code[0].ok);
  CHECK(a.steps[2].paths[0].text.find("[Code Output]\n\n```\nCode execute Error: ValueError: bad value\n```\n") !=
        std::string::npos);
  const auto& b = rs[1];
  CHECK(b.steps[0].paths[0].code[0].output == "other");
  CHECK(b.steps[1].paths[0].code[0].timed_out);
  CHECK(b.steps[1].paths[0].code[0].output.rfind("Code execute time out", 0) == 0);
  CHECK(a.value[1] == doctest::Approx(0.8));
}

TEST_CASE("verifier with the real sandbox: a prior's blocks are replayed into a fresh session") {
  SandboxOptions so;
  so.timeout_s = 2.0;
  so.workers = 1;
  SandboxPool pool(so);
  ScriptedGenerator gen;
  gen.script = [](const std::string& p, int) {
    Continuation c;
    const bool step3 = p.find("Paragraph 3 step by step") != std::string::npos;
    const bool step2 = !step3 && p.find("Paragraph 2 step by step") != std::string::npos;
    if (ends_with(p, "step by step: ")) c.text = "fine\n</analyze>\n";
    else if (ends_with(p, "```python\n"))
      c.text = step3 ? "print(sum(xs))\n```\n" : step2 ? "xs.append(2)\nprint(xs)\n```\n" : "xs = [1]\nprint(xs)\n```\n";
    else c.text = "</verify>\n<output>\n**Judgement**: $\\boxed{Yes}$\n</output>\n";
    return c;
  };
  VerifierConfig cfg;
  Verifier<ScriptedGenerator, SandboxPool> v(gen, pool, fake_tokenizer(), cfg);
  auto prior = std::make_shared<const SolutionResult>(v.verify({"p", "Sum?", {"s1", "s2"}}));
  REQUIRE(prior->steps[1].paths[0].code[0].output == "[1, 2]");
  const SolutionResult r = v.verify({"q", "Sum?", {"s1", "s2", "s3"}, prior});
  REQUIRE(r.error.empty());
  CHECK(r.reused_steps == 2);
  CHECK(r.replayed_code_blocks == 2);
  // Replayed once each, in order: a doubled append would give 5, a missing one 1 or a NameError.
  CHECK(r.steps[2].paths[0].code[0].output == "3");
  CHECK(r.steps[2].paths[0].code[0].order == 2);
}
