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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "genprm/exec/isolation.hpp"
#include "genprm/exec/worker_source.hpp"
#include "genprm/util/error.hpp"
#include "genprm/util/log.hpp"

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
  bool use_namespaces = true;      // user, mount (read-only fs + private tmpfs), PID, network
  bool drop_privileges = true;     // to uid/gid 65534 when the host runs as root
  bool use_seccomp = true;
  bool announce_reset = true;      // prefix the first output after a lost worker with a note
  bool allow_subprocess = false;   // false: execve fails with EPERM inside blocks (seccomp)
  /// Most session workers alive at once (memory bound); 0 = one per open session. Beyond it the
  /// least recently used idle session loses its worker and restarts fresh (with the reset note).
  int max_live_workers = 0;
  std::string temp_root = "";      // where private working dirs go; "" -> $TMPDIR or /tmp
};

struct CodeResult {
  std::string output;        // exactly what GenPRM appends after "[Code Output]"
  bool ok = false;           // the block ran to completion without an exception
  bool timed_out = false;    // wall clock or CPU limit
  bool state_reset = false;  // this block ran in a fresh worker after the session lost its state
  double seconds = 0.0;      // wall time of the block (queueing excluded)
};

/// Last ```python block of `text` exactly as GenPRM's CodeExecutor extracts it
/// (re.findall(r'```python\s*(.*?)\s*```', text, re.DOTALL)[-1].strip()); nullopt when none.
inline std::optional<std::string> last_python_block(const std::string& text) {
  static const std::string open = "```python", fence = "```";
  auto is_space = [](char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
  };
  std::optional<std::string> last;
  size_t pos = 0;
  while ((pos = text.find(open, pos)) != std::string::npos) {
    size_t body = pos + open.size();
    while (body < text.size() && is_space(text[body])) ++body;
    // The lazy group ends at the first fence; the whitespace around it is not part of it.
    size_t close = text.find(fence, body);
    if (close == std::string::npos) break;
    size_t end = close;
    while (end > body && is_space(text[end - 1])) --end;
    std::string block = text.substr(body, end > body ? end - body : 0);
    size_t b = 0, e = block.size();
    while (b < e && is_space(block[b])) ++b;
    while (e > b && is_space(block[e - 1])) --e;
    last = block.substr(b, e - b);
    pos = close + fence.size();
  }
  return last;
}

namespace exec_detail {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline std::string default_python() {
  if (const char* env = std::getenv("GENPRM_SANDBOX_PYTHON"); env != nullptr && *env != '\0')
    return env;
  auto exists = [](const std::string& p) { return ::access(p.c_str(), X_OK) == 0; };
#ifdef GENPRM_SOURCE_DIR
  if (exists(std::string(GENPRM_SOURCE_DIR) + "/.venv/bin/python"))
    return std::string(GENPRM_SOURCE_DIR) + "/.venv/bin/python";
#endif
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) != nullptr) {
    std::string dir = cwd;
    while (!dir.empty()) {
      if (exists(dir + "/.venv/bin/python")) return dir + "/.venv/bin/python";
      size_t slash = dir.rfind('/');
      if (slash == std::string::npos || dir == "/") break;
      dir = slash == 0 ? "/" : dir.substr(0, slash);
      if (dir == "/") {
        if (exists("/.venv/bin/python")) return "/.venv/bin/python";
        break;
      }
    }
  }
  return "python3";
}

/// Absolute path of the interpreter (execve does not search PATH). Symlinks are kept: a venv's
/// python finds its site-packages through the path it was started by.
inline std::string resolve_python(const std::string& python) {
  std::string p = python.empty() ? default_python() : python;
  if (p.find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string cand = dirs.substr(start, end - start) + "/" + p;
      if (::access(cand.c_str(), X_OK) == 0) return cand;
      start = end + 1;
    }
    throw ValueError(fmt::format("SandboxOptions.python: '{}' not found on PATH", p));
  }
  if (p[0] != '/') {
    char cwd[4096];
    GENPRM_CHECK(::getcwd(cwd, sizeof cwd) != nullptr, "sandbox: getcwd failed");
    p = std::string(cwd) + "/" + p;
  }
  GENPRM_CHECK_ARG(::access(p.c_str(), X_OK) == 0,
                   "SandboxOptions.python: '{}' is not an executable file", p);
  return p;
}

inline int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);
  return 0;
}

/// rm -rf without following symlinks.
inline void remove_tree(const std::string& dir) {
  if (!dir.empty()) ::nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

inline std::string signal_text(int sig) {
  const char* d = ::strsignal(sig);
  return fmt::format("signal {} ({})", sig, d != nullptr ? d : "unknown");
}

struct Probe {
  IsolationPlan plan;
  std::vector<std::string> refused;  // mechanisms tried and refused, with the reason
};

/// Which mechanisms this machine permits, tried from the strongest set down (each try is one
/// short-lived child that runs the whole set-up and exits before execve).
inline Probe probe_isolation(bool namespaces, bool drop, bool seccomp, const std::string& tmp) {
  Probe out;
  const bool root = ::geteuid() == 0;
  std::string dir = tmp + "/genprm-probe-XXXXXX";
  GENPRM_CHECK(::mkdtemp(dir.data()) != nullptr, "sandbox: mkdtemp in {}: {}", tmp,
               std::strerror(errno));
  if (root && ::chown(dir.c_str(), 65534, 65534) != 0) {
    // the probe then reports the chdir step as refused
  }
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int p1[2], p2[2];
  GENPRM_CHECK(devnull >= 0 && ::pipe2(p1, O_CLOEXEC) == 0 && ::pipe2(p2, O_CLOEXEC) == 0,
               "sandbox: probe set-up failed: {}", std::strerror(errno));
  std::vector<sock_filter> filter = seccomp_program();
  std::string tmpfs_opts = fmt::format("size=1m,mode=0700,uid={},gid={}",
                                       root && drop ? 65534u : ::geteuid(),
                                       root && drop ? 65534u : ::getegid());
  auto attempt = [&](IsolationPlan plan, const char* what) {
    ChildPlan c;
    c.iso = plan;
    c.lim = WorkerLimits{};
    c.workdir = dir.c_str();
    c.tmpfs_options = tmpfs_opts.c_str();
    c.filter = filter.data();
    c.filter_len = static_cast<unsigned short>(filter.size());
    c.req_fd = p1[0];
    c.resp_fd = p2[1];
    c.devnull = devnull;
    c.dry_run = true;
    try {
      start_child(c);
      return true;
    } catch (const Error& e) {
      out.refused.push_back(fmt::format("{}: {}", what, e.what()));
      return false;
    }
  };
  IsolationPlan base;
  base.drop_uid = root && drop;
  if (seccomp && !filter.empty()) {
    IsolationPlan s = base;
    s.seccomp = true;
    base.seccomp = attempt(s, "seccomp");
  }
  IsolationPlan best = base;
  if (namespaces) {
    IsolationPlan full = base;
    full.user_ns = full.mount_ns = full.pid_ns = full.net_ns = full.mount_proc = true;
    std::vector<std::pair<IsolationPlan, const char*>> tries;
    tries.push_back({full, "user+mount+pid+net namespaces"});
    IsolationPlan noproc = full;
    noproc.mount_proc = false;
    tries.push_back({noproc, "user+mount+pid+net namespaces without own /proc"});
    if (root) {
      IsolationPlan nouser = full;
      nouser.user_ns = false;
      tries.push_back({nouser, "mount+pid+net namespaces"});
    }
    IsolationPlan netonly = base;
    netonly.net_ns = true;
    netonly.user_ns = !root;
    tries.push_back({netonly, "network namespace"});
    for (auto& [plan, what] : tries) {
      if (attempt(plan, what)) {
        best = plan;
        break;
      }
    }
  }
  out.plan = best;
  ::close(devnull);
  ::close(p1[0]); ::close(p1[1]); ::close(p2[0]); ::close(p2[1]);
  ::rmdir(dir.c_str());
  return out;
}

/// One worker process: a Python interpreter holding one session's namespace.
class Worker {
 public:
  Worker(const std::string& exe, const SandboxOptions& o, const IsolationPlan& iso,
         const std::vector<sock_filter>& filter, const std::string& temp_root)
      : iso_(iso) {
    workdir_ = temp_root + "/genprm-sandbox-XXXXXX";
    GENPRM_CHECK(::mkdtemp(workdir_.data()) != nullptr, "sandbox: mkdtemp in {}: {}", temp_root,
                 std::strerror(errno));
    if (iso.drop_uid && ::chown(workdir_.c_str(), iso.uid, iso.gid) != 0) {
      // without mount namespace the worker then fails at chdir and says so
    }
    ::chmod(workdir_.c_str(), 0700);
    // argv / envp prepared here: the child may not allocate.
    std::string preload;
    for (const auto& m : o.preload) preload += (preload.empty() ? "" : ",") + m;
    args_ = {exe, "-I", "-B", "-c", worker_python_source(), fmt::format("{}", o.timeout_s),
             fmt::format("{}", o.cpu_s), fmt::format("{}", o.max_output_bytes), preload,
             (iso.seccomp && !o.allow_subprocess) ? exec_syscalls() : std::string()};
    env_ = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + workdir_, "TMPDIR=" + workdir_,
            "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1",
            "MKL_NUM_THREADS=1", "NUMEXPR_NUM_THREADS=1", "MPLCONFIGDIR=" + workdir_,
            "MPLBACKEND=Agg"};
    std::vector<char*> argv, envp;
    for (auto& a : args_) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string tmpfs_opts = fmt::format("size={},mode=0700,uid={},gid={}", o.workdir_bytes,
                                         iso.drop_uid ? iso.uid : ::geteuid(),
                                         iso.drop_uid ? iso.gid : ::getegid());
    int req[2], resp[2];
    // Requests travel over a socket so that the host can write with MSG_NOSIGNAL: a worker
    // that died must give EPIPE, never SIGPIPE (which would end a C++ host process).
    GENPRM_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, req) == 0,
                 "sandbox: socketpair: {}", std::strerror(errno));
    if (::pipe2(resp, O_CLOEXEC) != 0) {
      ::close(req[0]); ::close(req[1]);
      throw Error(fmt::format("sandbox: pipe: {}", std::strerror(errno)));
    }
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ChildPlan c;
    c.iso = iso;
    c.lim.session_cpu_s = o.session_cpu_s > 0 ? o.session_cpu_s : 20 * o.cpu_s;
    c.lim.memory_bytes = o.memory_bytes;
    c.lim.file_size_bytes = o.file_size_bytes;
    c.lim.max_processes = o.max_processes;
    c.lim.max_open_files = o.max_open_files;
    c.lim.workdir_bytes = o.workdir_bytes;
    c.workdir = workdir_.c_str();
    c.tmpfs_options = tmpfs_opts.c_str();
    c.exe = args_[0].c_str();
    c.argv = argv.data();
    c.envp = envp.data();
    c.filter = filter.data();
    c.filter_len = static_cast<unsigned short>(filter.size());
    c.req_fd = req[0];
    c.resp_fd = resp[1];
    c.devnull = devnull;
    try {
      pid_ = start_child(c);
    } catch (...) {
      ::close(req[0]); ::close(req[1]); ::close(resp[0]); ::close(resp[1]); ::close(devnull);
      remove_tree(workdir_);
      throw;
    }
    ::close(req[0]);
    ::close(resp[1]);
    ::close(devnull);
    to_worker_ = req[1];
    from_worker_ = resp[0];
    max_frame_ = o.max_output_bytes + 4096;
  }

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { kill(); }

  /// Waits for the 'R' frame. False (worker killed, `why` set) when it does not come in time.
  bool wait_ready(double timeout_s, std::string& why) {
    char kind = 0;
    std::string text;
    if (!read_frame(now_s() + timeout_s, kind, text, why)) return false;
    if (kind != 'R') {
      why = "worker sent an unexpected first frame";
      kill();
      return false;
    }
    hardening_ = text;
    return true;
  }

  /// Syscall numbers of execve and execveat, for the worker's own seccomp filter.
  static std::string exec_syscalls() { return fmt::format("{},{}", SYS_execve, SYS_execveat); }

  /// What the worker reported it hardened itself with ("dumpable=0 noexec=1").
  const std::string& hardening() const { return hardening_; }

  bool alive() const { return pid_ > 0; }
  long pid() const { return pid_; }
  const std::string& workdir() const { return workdir_; }
  const std::string& lost_reason() const { return lost_reason_; }

  /// Sends `code`, waits for the reply until `hard_deadline`. Returns false when the worker is
  /// gone (killed at the deadline, crashed, protocol violation): `why`, `timed_out` say which.
  bool execute(const std::string& code, double hard_deadline, char& kind, std::string& text,
               std::string& why, bool& timed_out) {
    timed_out = false;
    std::string frame(4, '\0');
    uint32_t n = static_cast<uint32_t>(code.size());
    for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    frame += code;
    if (!write_all(frame)) {
      why = finish_lost("the worker stopped reading");
      return false;
    }
    if (!read_frame(hard_deadline, kind, text, why)) {
      timed_out = timed_out_;
      return false;
    }
    if (kind != 'O' && kind != 'E' && kind != 'T') {
      why = "worker sent an unknown frame";
      kill();
      return false;
    }
    return true;
  }

  /// SIGKILL to the worker and its process group, reap it, remove the working directory.
  void kill() {
    if (pid_ > 0) {
      ::kill(static_cast<pid_t>(-pid_), SIGKILL);  // the worker called setsid(): pgid == pid
      ::kill(static_cast<pid_t>(pid_), SIGKILL);
      reap();
    }
    close_fds();
    if (!workdir_.empty()) {
      remove_tree(workdir_);
      workdir_.clear();
    }
  }

 private:
  void close_fds() {
    if (to_worker_ >= 0) ::close(to_worker_);
    if (from_worker_ >= 0) ::close(from_worker_);
    to_worker_ = from_worker_ = -1;
  }

  void reap() {
    int status = 0;
    long r;
    do {
      r = ::waitpid(static_cast<pid_t>(pid_), &status, __WALL);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) status_ = status;
    pid_ = -1;
  }

  // The worker is gone or misbehaved: kill the group, describe the cause from its exit status.
  std::string finish_lost(const std::string& fallback) {
    if (pid_ > 0) {
      ::kill(static_cast<pid_t>(-pid_), SIGKILL);
      ::kill(static_cast<pid_t>(pid_), SIGKILL);
      // Prefer the status it died with on its own, when it already died.
      int status = 0;
      long r = ::waitpid(static_cast<pid_t>(pid_), &status, __WALL);
      if (r == pid_) status_ = status;
      pid_ = -1;
    }
    close_fds();
    std::string why = fallback;
    if (status_ >= 0 && !killed_by_us_) {
      if (WIFSIGNALED(status_)) {
        int sig = WTERMSIG(status_);
        if (sig == SIGXCPU) {
          cpu_exceeded_ = true;
          why = "exceeded its CPU time limit";
        } else {
          why = "was ended by " + signal_text(sig);
        }
      } else if (WIFEXITED(status_)) {
        why = fmt::format("exited with status {}", WEXITSTATUS(status_));
      }
    }
    lost_reason_ = why;
    return why;
  }

 public:
  bool cpu_exceeded() const { return cpu_exceeded_; }

 private:
  bool write_all(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t w = ::send(to_worker_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
    }
    return true;
  }

  // Reads exactly n bytes before the deadline. 1 ok, 0 EOF/error, -1 deadline.
  int read_exact(char* buf, size_t n, double deadline) {
    size_t got = 0;
    while (got < n) {
      double left = deadline - now_s();
      if (left <= 0) return -1;
      pollfd p{from_worker_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min(left * 1000.0 + 1, 1e9)));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return 0;
      if (r == 0) continue;
      ssize_t k = ::read(from_worker_, buf + got, n - got);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return 0;
      got += static_cast<size_t>(k);
    }
    return 1;
  }

  bool read_frame(double deadline, char& kind, std::string& text, std::string& why) {
    unsigned char hdr[4];
    int r = read_exact(reinterpret_cast<char*>(hdr), 4, deadline);
    uint32_t n = 0;
    if (r == 1) {
      n = hdr[0] | (hdr[1] << 8) | (hdr[2] << 16) | (static_cast<uint32_t>(hdr[3]) << 24);
      if (n == 0 || n > max_frame_) {
        killed_by_us_ = true;
        why = finish_lost("sent a malformed reply (protocol violation)");
        return false;
      }
      std::string body(n, '\0');
      r = read_exact(body.data(), n, deadline);
      if (r == 1) {
        kind = body[0];
        text = body.substr(1);
        return true;
      }
    }
    if (r == -1) {
      timed_out_ = true;
      killed_by_us_ = true;
      why = finish_lost("was killed at the wall-clock limit");
      return false;
    }
    why = finish_lost("ended unexpectedly");
    return false;
  }

  IsolationPlan iso_;
  long pid_ = -1;
  int to_worker_ = -1, from_worker_ = -1;
  int status_ = -1;
  bool timed_out_ = false, killed_by_us_ = false, cpu_exceeded_ = false;
  size_t max_frame_ = 0;
  std::string workdir_, lost_reason_, hardening_;
  std::vector<std::string> args_, env_;
};

}  // namespace exec_detail

/// A pool of sandboxed Python workers serving many sessions concurrently. Thread-safe.
class SandboxPool {
 public:
  explicit SandboxPool(SandboxOptions opts = {}) : opts_(std::move(opts)) {
    GENPRM_CHECK_ARG(opts_.timeout_s > 0, "SandboxOptions.timeout_s must be > 0, got {}",
                     opts_.timeout_s);
    GENPRM_CHECK_ARG(opts_.cpu_s > 0, "SandboxOptions.cpu_s must be > 0, got {}", opts_.cpu_s);
    GENPRM_CHECK_ARG(opts_.workers >= 1, "SandboxOptions.workers must be >= 1, got {}",
                     opts_.workers);
    GENPRM_CHECK_ARG(opts_.max_processes >= 1, "SandboxOptions.max_processes must be >= 1");
    GENPRM_CHECK_ARG(opts_.max_open_files >= 16,
                     "SandboxOptions.max_open_files must be >= 16 (Python needs a few), got {}",
                     opts_.max_open_files);
    GENPRM_CHECK_ARG(opts_.memory_bytes >= (64u << 20),
                     "SandboxOptions.memory_bytes must be >= 64 MiB, got {}", opts_.memory_bytes);
    GENPRM_CHECK_ARG(opts_.max_output_bytes >= 1, "SandboxOptions.max_output_bytes must be >= 1");
    for (const auto& m : opts_.preload) {
      GENPRM_CHECK_ARG(!m.empty() && m.find_first_of(", \n") == std::string::npos,
                       "SandboxOptions.preload: bad module name '{}'", m);
    }
    exe_ = exec_detail::resolve_python(opts_.python);
    temp_root_ = opts_.temp_root;
    if (temp_root_.empty()) {
      const char* t = std::getenv("TMPDIR");
      temp_root_ = (t != nullptr && *t != '\0') ? t : "/tmp";
    }
    probe_ = probe_cached(opts_.use_namespaces, opts_.drop_privileges, opts_.use_seccomp,
                          temp_root_);
    if (probe_.plan.seccomp) filter_ = exec_detail::seccomp_program();
    warm_target_ = opts_.warm_workers < 0 ? opts_.workers : opts_.warm_workers;
    // Start one worker now so that a broken interpreter path fails here, loudly.
    {
      auto w = spawn();
      hardening_ = w->hardening();
      std::lock_guard<std::mutex> lk(mu_);
      warm_.push_back(std::move(w));
    }
    for (int i = 0; i < opts_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
    spawner_ = std::thread([this] { spawner_loop(); });
  }

  SandboxPool(const SandboxPool&) = delete;
  SandboxPool& operator=(const SandboxPool&) = delete;

  ~SandboxPool() { shutdown(); }

  /// Ends the pool: running blocks are killed (their results say so), queued blocks are dropped
  /// (synchronous callers get a SandboxClosed error text), every worker is ended and its
  /// directory removed. Idempotent; submit/run afterwards throw genprm::Error.
  void shutdown() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (shut_down_) return;
      shut_down_ = stop_ = true;
      for (const exec_detail::Worker* w : busy_) {
        ::kill(static_cast<pid_t>(-w->pid()), SIGKILL);
        ::kill(static_cast<pid_t>(w->pid()), SIGKILL);
      }
    }
    cv_.notify_all();
    spawn_cv_.notify_all();
    done_cv_.notify_all();
    for (auto& t : threads_) t.join();
    if (spawner_.joinable()) spawner_.join();
    std::vector<std::unique_ptr<exec_detail::Worker>> dead;
    std::vector<Job> orphans;
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (auto& w : warm_) dead.push_back(std::move(w));
      warm_.clear();
      for (auto& [id, s] : sessions_) {
        if (s.worker) dead.push_back(std::move(s.worker));
        for (auto& j : s.pending) orphans.push_back(std::move(j));
      }
      sessions_.clear();
      ready_.clear();
      queued_ = 0;
    }
    for (auto& j : orphans) {
      if (j.sync) j.sync->set_value(closed_result());
    }
    dead.clear();  // kills and cleans up
  }

  /// A new, empty Python namespace. Its worker is attached at its first block.
  uint64_t open_session() {
    std::lock_guard<std::mutex> lk(mu_);
    GENPRM_CHECK(!shut_down_, "SandboxPool: the pool was shut down");
    uint64_t id = next_session_++;
    sessions_[id];
    return id;
  }

  /// Blocks already submitted still run and deliver; then the session's worker is ended.
  /// Unknown or already closed sessions are ignored.
  void close_session(uint64_t session) {
    std::unique_ptr<exec_detail::Worker> dead;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = sessions_.find(session);
      if (it == sessions_.end()) return;
      it->second.closed = true;
      if (!it->second.running && it->second.pending.empty()) {
        dead = std::move(it->second.worker);
        sessions_.erase(it);
      }
    }
  }

  /// Queues `code` for `session` and returns at once. Blocks of one session run in order;
  /// `on_done` runs on the thread that calls poll(). Throws ValueError for an unknown session.
  void submit(uint64_t session, std::string code, std::function<void(CodeResult)> on_done) {
    enqueue(session, Job{std::move(code), std::move(on_done), nullptr});
  }

  /// Runs the callbacks of finished blocks on this thread; returns how many.
  size_t poll() {
    std::deque<std::pair<std::function<void(CodeResult)>, CodeResult>> done;
    {
      std::lock_guard<std::mutex> lk(mu_);
      done.swap(done_);
    }
    for (auto& [cb, r] : done) {
      if (cb) cb(std::move(r));
    }
    return done.size();
  }

  /// Waits up to `timeout_s` until a result is ready for poll() or nothing is left to do.
  /// True when a result is ready.
  bool wait_for_result(double timeout_s) {
    std::unique_lock<std::mutex> lk(mu_);
    return done_cv_.wait_for(lk, std::chrono::duration<double>(timeout_s), [&] {
      return !done_.empty() || (queued_ == 0 && running_ == 0) || stop_;
    }) && !done_.empty();
  }

  /// wait_for_result(timeout_s), then poll().
  size_t wait_and_poll(double timeout_s) {
    wait_for_result(timeout_s);
    return poll();
  }

  /// Nothing queued, running, or waiting for poll().
  bool idle() const {
    std::lock_guard<std::mutex> lk(mu_);
    return queued_ == 0 && running_ == 0 && done_.empty();
  }

  /// Synchronous: runs `code` in `session` after the blocks already queued for it.
  CodeResult run(uint64_t session, const std::string& code) {
    auto p = std::make_shared<std::promise<CodeResult>>();
    auto f = p->get_future();
    enqueue(session, Job{code, nullptr, p});
    return f.get();
  }

  /// The mechanisms in force, one per line, and those the probe found refused.
  std::string describe_isolation() const {
    const auto& p = probe_.plan;
    std::string s;
    s += fmt::format("interpreter: {} -I -B (isolated mode, scrubbed environment)\n", exe_);
    s += fmt::format(
        "rlimits: cpu {}s per block ({}s per worker), address space {} MiB, file size {} MiB, "
        "processes {}, open files {}, no core dumps\n",
        opts_.cpu_s, opts_.session_cpu_s > 0 ? opts_.session_cpu_s : 20 * opts_.cpu_s,
        opts_.memory_bytes >> 20, opts_.file_size_bytes >> 20, opts_.max_processes,
        opts_.max_open_files);
    s += fmt::format("wall clock: {}s per block (TimeoutError in the block, SIGKILL of the "
                     "process group {}s later)\n", opts_.timeout_s, opts_.kill_grace_s);
    s += fmt::format("output cap: {} bytes with a visible truncation marker\n",
                     opts_.max_output_bytes);
    s += fmt::format("user namespace: {}\n", p.user_ns ? "yes (only the sandbox uid is mapped)"
                                                       : "no");
    s += fmt::format("network namespace: {}\n", p.net_ns ? "yes (no network, loopback down)"
                                                         : "no (network reachable!)");
    s += fmt::format("pid namespace: {}\n",
                     p.pid_ns ? "yes (worker is init; leftover processes killed after each block)"
                              : "no");
    s += fmt::format("mount namespace: {}\n",
                     p.mount_ns ? (p.mount_proc ? "yes (all mounts read-only, private tmpfs "
                                                  "workdir, own /proc)"
                                                : "yes (all mounts read-only, private tmpfs "
                                                  "workdir; host /proc)")
                                : "no (private temp dir only; the filesystem is as writable as "
                                  "the worker's uid allows)");
    s += fmt::format("privilege drop: {}\n",
                     p.drop_uid ? fmt::format("yes (uid/gid {}, no supplementary groups)", p.uid)
                                : (::geteuid() == 0 ? "no (disabled)" : "not needed (not root)"));
    s += fmt::format("no_new_privs: yes\nseccomp: {}\n",
                     p.seccomp ? "yes (deny-list: ptrace, mount, namespaces, bpf, keyctl, "
                                 "non-AF_UNIX sockets, ...)"
                               : "no");
    const bool noexec = hardening_.find("noexec=1") != std::string::npos;
    s += fmt::format("running other programs (execve): {}\n",
                     noexec ? "blocked (worker's own seccomp filter, EPERM)"
                            : (opts_.allow_subprocess ? "allowed (allow_subprocess)" : "allowed"));
    s += fmt::format("worker non-dumpable (no ptrace or /proc/<pid>/mem by the same uid): {}\n",
                     hardening_.find("dumpable=0") != std::string::npos ? "yes" : "no");
    for (const auto& r : probe_.refused) s += "refused at probe: " + r + "\n";
    return s;
  }

  /// Isolation the probe chose (for tests and diagnostics).
  const exec_detail::IsolationPlan& isolation() const { return probe_.plan; }
  const SandboxOptions& options() const { return opts_; }
  const std::string& python() const { return exe_; }

  /// Live worker processes (sessions + warm spares), for tests.
  size_t live_workers() const {
    std::lock_guard<std::mutex> lk(mu_);
    size_t n = warm_.size() + busy_workers_;
    for (const auto& [id, s] : sessions_) n += s.worker ? 1 : 0;
    return n;
  }

  /// Host pid of a session's worker (-1 when none attached), for tests.
  long session_worker_pid(uint64_t session) const {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = sessions_.find(session);
    return (it != sessions_.end() && it->second.worker) ? it->second.worker->pid() : -1;
  }

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

  static exec_detail::Probe probe_cached(bool ns, bool drop, bool sc, const std::string& tmp) {
    static std::mutex m;
    static std::map<std::tuple<bool, bool, bool, std::string>, exec_detail::Probe> cache;
    std::lock_guard<std::mutex> lk(m);
    auto key = std::make_tuple(ns, drop, sc, tmp);
    auto it = cache.find(key);
    if (it == cache.end()) {
      it = cache.emplace(key, exec_detail::probe_isolation(ns, drop, sc, tmp)).first;
      for (const auto& r : it->second.refused) log(LogLevel::Info, "sandbox probe: {}", r);
    }
    return it->second;
  }

  static CodeResult closed_result() {
    CodeResult r;
    r.output = "Code execute Error: SandboxClosed: the sandbox pool was shut down";
    return r;
  }

  std::unique_ptr<exec_detail::Worker> spawn() {
    auto w = std::make_unique<exec_detail::Worker>(exe_, opts_, probe_.plan, filter_, temp_root_);
    std::string why;
    GENPRM_CHECK(w->wait_ready(opts_.startup_timeout_s, why),
                 "sandbox: worker {} did not start: it {} (check SandboxOptions.python and "
                 "preload)", exe_, why);
    return w;
  }

  void enqueue(uint64_t session, Job job) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      GENPRM_CHECK(!shut_down_, "SandboxPool: the pool was shut down");
      auto it = sessions_.find(session);
      GENPRM_CHECK_ARG(it != sessions_.end() && !it->second.closed,
                       "SandboxPool: session {} is not open", session);
      it->second.pending.push_back(std::move(job));
      ++queued_;
      if (!it->second.running && it->second.pending.size() == 1) ready_.push_back(session);
    }
    cv_.notify_all();
  }

  std::unique_ptr<exec_detail::Worker> take_worker(std::string& error) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!warm_.empty()) {
        auto w = std::move(warm_.front());
        warm_.pop_front();
        spawn_cv_.notify_all();
        return w;
      }
    }
    spawn_cv_.notify_all();
    try {
      return spawn();
    } catch (const Error& e) {
      error = e.what();
      return nullptr;
    }
  }

  CodeResult execute(exec_detail::Worker& w, const std::string& code, bool& lost,
                     std::string& lost_why) {
    CodeResult r;
    double t0 = exec_detail::now_s();
    char kind = 0;
    std::string text, why;
    bool timed_out = false;
    bool alive = w.execute(code, t0 + opts_.timeout_s + opts_.kill_grace_s, kind, text, why,
                           timed_out);
    r.seconds = exec_detail::now_s() - t0;
    if (alive) {
      r.output = std::move(text);
      r.ok = kind == 'O';
      r.timed_out = kind == 'T';
      lost = false;
      return r;
    }
    lost = true;
    lost_why = why;
    if (timed_out) {
      r.timed_out = true;
      r.output = "Code execute time out: Code execution timed out";
    } else if (w.cpu_exceeded()) {
      r.timed_out = true;
      r.output = "Code execute time out: CPU time limit exceeded";
    } else {
      r.output = fmt::format("Code execute Error: SandboxCrash: the Python process {}", why);
    }
    return r;
  }

  // Caller holds mu_.
  void touch_session(uint64_t sid) {
    auto it = sessions_.find(sid);
    if (it != sessions_.end()) it->second.last_used = ++tick_;
  }

  /// With max_live_workers set, ends the workers of the least recently used idle sessions until
  /// one more worker fits; those sessions restart fresh (with the reset note).
  void evict_idle_workers_over_limit() {
    if (opts_.max_live_workers <= 0) return;
    std::vector<std::unique_ptr<exec_detail::Worker>> evicted;
    {
      std::lock_guard<std::mutex> lk(mu_);
      // busy blocks hold their worker outside the session; minus the caller, which has none yet
      size_t attached = busy_workers_ > 0 ? busy_workers_ - 1 : 0;
      for (const auto& [id, s] : sessions_) attached += s.worker ? 1 : 0;
      while (attached >= static_cast<size_t>(opts_.max_live_workers)) {
        Session* lru = nullptr;
        for (auto& [id, s] : sessions_) {
          if (s.worker && !s.running && s.pending.empty() &&
              (lru == nullptr || s.last_used < lru->last_used))
            lru = &s;
        }
        if (lru == nullptr) break;
        evicted.push_back(std::move(lru->worker));
        lru->reset_pending = true;
        lru->reset_reason = fmt::format(
            "was ended to keep at most {} workers alive (max_live_workers)",
            opts_.max_live_workers);
        --attached;
      }
    }
  }

  void worker_loop() {
    std::unique_lock<std::mutex> lk(mu_);
    while (true) {
      cv_.wait(lk, [&] { return stop_ || !ready_.empty(); });
      if (stop_) return;
      uint64_t sid = ready_.front();
      ready_.pop_front();
      Session& s = sessions_.at(sid);
      Job job = std::move(s.pending.front());
      s.pending.pop_front();
      --queued_;
      ++running_;
      s.running = true;
      std::unique_ptr<exec_detail::Worker> w = std::move(s.worker);
      const bool reset = s.reset_pending;
      const std::string reset_reason = s.reset_reason;
      s.reset_pending = false;
      ++busy_workers_;
      lk.unlock();

      CodeResult r;
      bool lost = false;
      std::string lost_why, error;
      if (!w) {
        evict_idle_workers_over_limit();
        w = take_worker(error);
      }
      if (w) {
        std::lock_guard<std::mutex> g(mu_);
        busy_.insert(w.get());
        if (stop_) {  // shutdown() ran between take_worker and here
          ::kill(static_cast<pid_t>(-w->pid()), SIGKILL);
          ::kill(static_cast<pid_t>(w->pid()), SIGKILL);
        }
      }
      if (!w) {
        r.output = fmt::format("Code execute Error: SandboxError: {}", error);
      } else {
        r = execute(*w, job.code, lost, lost_why);
      }
      if (reset) {
        r.state_reset = true;
        if (opts_.announce_reset) {
          std::string note = fmt::format(
              "[Sandbox note: the Python state was reset because the previous code block's "
              "process {}; variables defined before are lost]", reset_reason);
          r.output = r.output.empty() ? note : note + "\n" + r.output;
        }
      }
      if (w) {
        std::lock_guard<std::mutex> g(mu_);
        busy_.erase(w.get());
      }
      std::unique_ptr<exec_detail::Worker> dead;
      if (lost) dead = std::move(w);
      dead.reset();  // reap + remove workdir before taking the lock

      lk.lock();
      touch_session(sid);
      --busy_workers_;
      --running_;
      Session& s2 = sessions_.at(sid);
      s2.running = false;
      if (lost || !w) {
        if (lost || (!w && reset)) {
          s2.reset_pending = true;
          s2.reset_reason = lost ? lost_why : reset_reason;
        }
      } else {
        s2.worker = std::move(w);
      }
      if (job.sync) {
        job.sync->set_value(std::move(r));
      } else {
        done_.emplace_back(std::move(job.on_done), std::move(r));
      }
      if (!s2.pending.empty()) {
        ready_.push_back(sid);
        cv_.notify_one();
      } else if (s2.closed) {
        dead = std::move(s2.worker);
        sessions_.erase(sid);
        lk.unlock();
        dead.reset();
        lk.lock();
      }
      done_cv_.notify_all();
    }
  }

  void spawner_loop() {
    std::unique_lock<std::mutex> lk(mu_);
    int failures = 0;
    while (!stop_) {
      if (static_cast<int>(warm_.size()) >= warm_target_) {
        spawn_cv_.wait(lk);
        continue;
      }
      lk.unlock();
      std::unique_ptr<exec_detail::Worker> w;
      try {
        w = spawn();
        failures = 0;
      } catch (const Error& e) {
        log(LogLevel::Warn, "sandbox: warm worker start failed: {}", e.what());
        ++failures;
      }
      lk.lock();
      if (w) {
        if (stop_) break;
        warm_.push_back(std::move(w));
      } else {
        spawn_cv_.wait_for(lk, std::chrono::milliseconds(std::min(5000, 100 << std::min(failures, 6))));
      }
    }
  }

  SandboxOptions opts_;
  std::string exe_, temp_root_;
  exec_detail::Probe probe_;
  std::vector<sock_filter> filter_;
  std::string hardening_;
  int warm_target_ = 0;

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
