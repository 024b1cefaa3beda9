#pragma once
// GenPRM over the real stack: Qwen2 model + engine (radix prefix cache) + sandbox pool +
// tokenizer, all loaded from one checkpoint directory. The one prm header that needs torch.
//
//   prm::GenPRM prm("path/to/GenPRM-1.5B", opts);
//   prm::SolutionResult r = prm.verify({"id", problem, steps});
#include <memory>
#include <string>
#include <vector>

#include "genprm/engine/engine.hpp"
#include "genprm/exec/sandbox.hpp"
#include "genprm/model/device.hpp"
#include "genprm/prm/tokenizer_ops.hpp"
#include "genprm/prm/verifier.hpp"

namespace genprm::prm {

/// A SandboxPool started on first use, so modes without execution start no Python workers.
class LazySandbox {
 public:
  explicit LazySandbox(SandboxOptions opts) : opts_(std::move(opts)) {}
  uint64_t open_session() { return pool().open_session(); }
  void close_session(uint64_t s) { pool().close_session(s); }
  void submit(uint64_t s, std::string code, std::function<void(CodeResult)> cb) {
    pool().submit(s, std::move(code), std::move(cb));
  }
  size_t poll() { return pool_ ? pool_->poll() : 0; }
  size_t wait_and_poll(double timeout_s) { return pool_ ? pool_->wait_and_poll(timeout_s) : 0; }
  bool started() const { return pool_ != nullptr; }
  SandboxPool& pool() {
    if (!pool_) pool_ = std::make_unique<SandboxPool>(opts_);
    return *pool_;
  }

 private:
  SandboxOptions opts_;
  std::unique_ptr<SandboxPool> pool_;
};

struct GenPRMOptions {
  std::string device = "cpu";
  std::string dtype = "float32";
  VerifierConfig verifier;
  EngineOptions engine;
  /// timeout_s = 5 s per block, as the reference's CodeExecutor. sympy and numpy are imported
  /// before a worker takes blocks: the reference imports them once per process, and where no
  /// .pyc files exist (read-only site-packages) a cold `import sympy` alone can outlast 5 s.
  SandboxOptions sandbox = default_sandbox();

  static auto fields() {
    using O = GenPRMOptions;
    return std::make_tuple(field("device", &O::device), field("dtype", &O::dtype), field("verifier", &O::verifier),
                           field("engine", &O::engine), field("sandbox", &O::sandbox));
  }
  void validate() const { verifier.validate(); }

  static SandboxOptions default_sandbox() {
    SandboxOptions o;
    o.preload = {"sympy", "numpy"};
    return o;
  }
};

class GenPRM {
 public:
  using Verifier_ = Verifier<Engine, LazySandbox>;

  /// Loads config.json, the safetensors weights and the tokenizer of `model_dir`. Throws
  /// ValueError naming the file for anything malformed or missing.
  GenPRM(const std::string& model_dir, GenPRMOptions opts)
      : opts_(std::move(opts)),
        served_(model_dir, opts_.device, opts_.dtype, opts_.engine, std::nullopt, /*require_tokenizer=*/true),
        sandbox_(std::make_unique<LazySandbox>(opts_.sandbox)),
        verifier_(std::make_unique<Verifier_>(served_.engine(), *sandbox_, make_tokenizer_ops(tokenizer()),
                                              opts_.verifier)) {}

  SolutionResult verify(SolutionInput input) { return verifier_->verify(std::move(input)); }

  std::vector<SolutionResult> verify_many(
      std::vector<SolutionInput> inputs,
      const std::function<void(size_t, const SolutionResult&)>& on_result = {}) {
    return verifier_->verify_many(std::move(inputs), on_result);
  }

  EngineStats engine_stats() const { return served_.engine().stats(); }
  const GenPRMOptions& options() const { return opts_; }
  const Tokenizer& tokenizer() const { return *served_.tokenizer(); }
  Engine& engine() { return served_.engine(); }
  LazySandbox& sandbox() { return *sandbox_; }

 private:
  GenPRMOptions opts_;
  ServedModel served_;
  std::unique_ptr<LazySandbox> sandbox_;
  std::unique_ptr<Verifier_> verifier_;
};

}  // namespace genprm::prm
