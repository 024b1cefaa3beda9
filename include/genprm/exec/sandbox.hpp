#pragma once
// Sandboxed execution of model-written Python (GenPRM's code executor, made safe).
//
//   SandboxPool pool;                          // probes isolation, starts warm workers
//   uint64_t s = pool.open_session();          // one persistent Python namespace
//   pool.submit(s, "x = 2\nprint(x + 1)", [](CodeResult r) { ... });   // returns at once
//   while (!pool.idle()) pool.poll();          // callbacks run here, on the polling thread
//   pool.run(s, "print(x)").output == "2";     // synchronous convenience
//
// Each session owns one worker process (a separate Python interpreter, started isolated by
// exec/isolation.hpp) from its first block until close_session(). Blocks of a session run in
// order, different sessions in parallel on `workers` threads. Failure contract:
//   * an exception is in-band: "Code execute Error: {Type}: {message}", namespace kept;
//   * a block past `timeout_s` gets TimeoutError inside the worker (reference behaviour:
//     "Code execute time out: Code execution timed out", namespace kept); if it does not stop
//     within `kill_grace_s` more, the worker's process group is killed;
//   * a kill, crash, CPU-limit or protocol violation loses only that session's namespace: its
//     next block runs in a fresh worker, with `state_reset` set and a note before the output.
// Nothing a block does reaches the host process: it only ever reads length-checked frames.
//
// The process code (clone, isolation, the worker protocol, the pool's threads) is compiled once
// into the library, in src/exec/; this header declares it.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "genprm/exec/isolation.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/fields.hpp"
#include "genprm/util/python_text.hpp"  // last_python_block (GenPRM's code extraction)

namespace genprm {

struct SandboxOptions {
  /// Interpreter. "" -> $GENPRM_SANDBOX_PYTHON, else a `.venv/bin/python` found from the project
  /// source dir (GENPRM_SOURCE_DIR) or the current directory upwards, else `python3` on PATH.
  std::string python = "";
  double timeout_s = 5.0;          // wall clock per block
  double kill_grace_s = 0.5;       // after timeout_s: worker group SIGKILLed if still running
  double cpu_s = 10.0;             // CPU seconds per block (all threads); worker killed past it
  double session_cpu_s = 0.0;      // CPU seconds over a worker's life; 0 -> 20 * cpu_s
  size_t memory_bytes = 2ull << 30;       // address space (RLIMIT_AS)
  size_t file_size_bytes = 16u << 20;     // largest file a block can write (RLIMIT_FSIZE)
  size_t workdir_bytes = 64u << 20;       // private tmpfs size (mount-namespace mode)
  int max_processes = 32;          // processes + threads of the worker (RLIMIT_NPROC)
  int max_open_files = 64;         // RLIMIT_NOFILE
  size_t max_output_bytes = 64 * 1024;  // longer stdout is cut with a visible marker
  int workers = 4;                 // blocks running at once (threads); also the warm spares
  int warm_workers = -1;           // started ahead of need; -1 -> workers
  /// Modules imported by each worker before it is handed out (their import time is then hidden
  /// behind warm start-up), e.g. {"sympy", "numpy"}. Not placed in the namespace.
  std::vector<std::string> preload = {};
  double startup_timeout_s = 60.0;  // worker start-up (with preloads) before it counts as failed
  /// Isolation switches; each is used only where the start-up probe finds it permitted.
  bool use_namespaces = true;      // user, mount (minimal root + private tmpfs), PID, network, IPC
  /// With a mount namespace: the block sees only the interpreter, what it imports and its work
  /// dir (a new root of read-only binds). false: the host's whole tree, read-only.
  bool minimal_root = true;
  bool drop_privileges = true;     // to uid/gid 65534 when the host runs as root
  bool use_seccomp = true;
  bool announce_reset = true;      // prefix the first output after a lost worker with a note
  bool allow_subprocess = false;   // false: execve fails with EPERM inside blocks (seccomp)
  /// Most session workers alive at once (memory bound); 0 = one per open session. Beyond it the
  /// least recently used idle session loses its worker and restarts fresh (with the reset note).
  int max_live_workers = 0;
  std::string temp_root = "";      // where private working dirs go; "" -> $TMPDIR or /tmp

  static auto fields() {
    using S = SandboxOptions;
    return std::make_tuple(field("python", &S::python), field("timeout_s", &S::timeout_s),
                           field("kill_grace_s", &S::kill_grace_s), field("cpu_s", &S::cpu_s),
                           field("session_cpu_s", &S::session_cpu_s), field("memory_bytes", &S::memory_bytes),
                           field("file_size_bytes", &S::file_size_bytes),
                           field("workdir_bytes", &S::workdir_bytes), field("max_processes", &S::max_processes),
                           field("max_open_files", &S::max_open_files),
                           field("max_output_bytes", &S::max_output_bytes), field("workers", &S::workers),
                           field("warm_workers", &S::warm_workers), field("preload", &S::preload),
                           field("startup_timeout_s", &S::startup_timeout_s),
                           field("use_namespaces", &S::use_namespaces),
                           field("minimal_root", &S::minimal_root),
                           field("drop_privileges", &S::drop_privileges), field("use_seccomp", &S::use_seccomp),
                           field("announce_reset", &S::announce_reset),
                           field("allow_subprocess", &S::allow_subprocess),
                           field("max_live_workers", &S::max_live_workers), field("temp_root", &S::temp_root));
  }
};

struct CodeResult {
  std::string output;        // exactly what GenPRM appends after "[Code Output]"
  bool ok = false;           // the block ran to completion without an exception
  bool timed_out = false;    // wall clock or CPU limit
  bool state_reset = false;  // this block ran in a fresh worker after the session lost its state
  double seconds = 0.0;      // wall time of the block (queueing excluded)

  static auto fields() {
    using C = CodeResult;
    return std::make_tuple(field("output", &C::output), field("ok", &C::ok), field("timed_out", &C::timed_out),
                           field("state_reset", &C::state_reset), field("seconds", &C::seconds));
  }
};

namespace exec_detail {

struct Probe {
  IsolationPlan plan;
  std::vector<std::string> refused;  // mechanisms tried and refused, with the reason
};

class Worker;  // one worker process (src/exec/sandbox.cpp)

/// GENPRM_SOURCE_DIR of the code that creates the pool (tests define it), read here in the
/// header because the compiled library is built without it; nullptr when not defined.
inline const char* caller_source_dir() {
#ifdef GENPRM_SOURCE_DIR
  return GENPRM_SOURCE_DIR;
#else
  return nullptr;
#endif
}

}  // namespace exec_detail

/// A pool of sandboxed Python workers serving many sessions concurrently. Thread-safe.
class SandboxPool {
 public:
  explicit SandboxPool(SandboxOptions opts = {})
      : SandboxPool(std::move(opts), exec_detail::caller_source_dir()) {}

  SandboxPool(const SandboxPool&) = delete;
  SandboxPool& operator=(const SandboxPool&) = delete;

  ~SandboxPool();  // calls shutdown()

  /// Ends the pool: running blocks are killed (their results say so), queued blocks are dropped
  /// (synchronous callers get a SandboxClosed error text), every worker is ended and its
  /// directory removed. Idempotent; submit/run afterwards throw genprm::Error.
  void shutdown();

  /// A new, empty Python namespace. Its worker is attached at its first block.
  uint64_t open_session();

  /// Blocks already submitted still run and deliver; then the session's worker is ended.
  /// Unknown or already closed sessions are ignored.
  void close_session(uint64_t session);

  /// Queues `code` for `session` and returns at once. Blocks of one session run in order;
  /// `on_done` runs on the thread that calls poll(). Throws ValueError for an unknown session.
  void submit(uint64_t session, std::string code, std::function<void(CodeResult)> on_done);

  /// Runs the callbacks of finished blocks on this thread; returns how many.
  size_t poll();

  /// Waits up to `timeout_s` until a result is ready for poll() or nothing is left to do.
  /// True when a result is ready.
  bool wait_for_result(double timeout_s);

  /// wait_for_result(timeout_s), then poll().
  size_t wait_and_poll(double timeout_s);

  /// Nothing queued, running, or waiting for poll().
  bool idle() const;

  /// Synchronous: runs `code` in `session` after the blocks already queued for it.
  CodeResult run(uint64_t session, const std::string& code);

  /// The mechanisms in force, one per line, and those the probe found refused.
  std::string describe_isolation() const;

  /// Isolation the probe chose (for tests and diagnostics).
  const exec_detail::IsolationPlan& isolation() const { return probe_.plan; }
  const SandboxOptions& options() const { return opts_; }
  const std::string& python() const { return exe_; }

  /// Live worker processes (sessions + warm spares), for tests.
  size_t live_workers() const;

  /// Host pid of a session's worker (-1 when none attached), for tests.
  long session_worker_pid(uint64_t session) const;

 private:
  struct Job {
    std::string code;
    std::function<void(CodeResult)> on_done;
    std::shared_ptr<std::promise<CodeResult>> sync;
  };
  struct Session {
    std::deque<Job> pending;
    std::unique_ptr<exec_detail::Worker> worker;
    uint64_t last_used = 0;  // tick of its last block, for LRU eviction
    bool running = false, closed = false, reset_pending = false;
    std::string reset_reason;
  };

  SandboxPool(SandboxOptions opts, const char* source_dir);
  std::unique_ptr<exec_detail::Worker> spawn();
  void enqueue(uint64_t session, Job job);
  std::unique_ptr<exec_detail::Worker> take_worker(std::string& error);
  CodeResult execute(exec_detail::Worker& w, const std::string& code, bool& lost,
                     std::string& lost_why);
  void touch_session(uint64_t sid);  // caller holds mu_
  /// With max_live_workers set, ends the workers of the least recently used idle sessions until
  /// one more worker fits; those sessions restart fresh (with the reset note).
  void evict_idle_workers_over_limit();
  void worker_loop();
  void spawner_loop(std::promise<void>* first);  // sets `first` once the first worker runs

  SandboxOptions opts_;
  std::string exe_, temp_root_;
  exec_detail::Probe probe_;
  exec_detail::RootLayout root_layout_;  // what the minimal root shows (probe_.plan.minimal_root)
  std::string root_error_;               // why no layout could be computed
  std::vector<sock_filter> filter_;
  std::string hardening_;
  int warm_target_ = 0;
  int stale_removed_ = 0;  // stale directories of dead engines removed at construction

  mutable std::mutex mu_;
  std::condition_variable cv_, spawn_cv_, done_cv_;
  bool stop_ = false;
  uint64_t next_session_ = 1;
  std::unordered_map<uint64_t, Session> sessions_;
  std::deque<uint64_t> ready_;
  std::deque<std::unique_ptr<exec_detail::Worker>> warm_;
  std::deque<std::pair<std::function<void(CodeResult)>, CodeResult>> done_;
  size_t queued_ = 0, running_ = 0, busy_workers_ = 0;
  bool shut_down_ = false;
  uint64_t tick_ = 0;
  std::unordered_set<const exec_detail::Worker*> busy_;
  std::vector<std::thread> threads_;
  std::thread spawner_;
};

/// One session on its own pool: the `PythonSandbox` of the issue, for single-threaded callers.
class PythonSandbox {
 public:
  explicit PythonSandbox(SandboxOptions opts = {}) : pool_(with_one_worker(std::move(opts))) {
    session_ = pool_.open_session();
  }
  CodeResult run(const std::string& code) { return pool_.run(session_, code); }
  /// Drops the namespace: the next block starts in a fresh worker (no reset note).
  void reset() {
    pool_.close_session(session_);
    session_ = pool_.open_session();
  }
  std::string describe_isolation() const { return pool_.describe_isolation(); }
  SandboxPool& pool() { return pool_; }

 private:
  static SandboxOptions with_one_worker(SandboxOptions o) {
    o.workers = 1;
    return o;
  }
  SandboxPool pool_;
  uint64_t session_ = 0;
};

}  // namespace genprm
