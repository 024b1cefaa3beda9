// The code of exec/sandbox.hpp: one worker process (start-up, frame protocol, kill and reap) and
// the pool (isolation probe, threads, sessions). Compiled once into genprm_exec rather than in
// every unit that includes the header (all of prm/genprm.hpp's users).
#include "genprm/exec/sandbox.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>

#include "genprm/util/error.hpp"
#include "genprm/util/log.hpp"
#include "worker_source.hpp"

namespace genprm {
namespace exec_detail {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// `source_dir`: the caller's GENPRM_SOURCE_DIR or nullptr (see caller_source_dir()).
std::string default_python(const char* source_dir) {
  if (const char* env = std::getenv("GENPRM_SANDBOX_PYTHON"); env != nullptr && *env != '\0')
    return env;
  auto exists = [](const std::string& p) { return ::access(p.c_str(), X_OK) == 0; };
  if (source_dir != nullptr && exists(std::string(source_dir) + "/.venv/bin/python"))
    return std::string(source_dir) + "/.venv/bin/python";
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
std::string resolve_python(const std::string& python, const char* source_dir) {
  std::string p = python.empty() ? default_python(source_dir) : python;
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

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);
  return 0;
}

/// rm -rf without following symlinks.
void remove_tree(const std::string& dir) {
  if (!dir.empty()) ::nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

std::string signal_text(int sig) {
  const char* d = ::strsignal(sig);
  return fmt::format("signal {} ({})", sig, d != nullptr ? d : "unknown");
}


/// The ChildPlan fields a probe child and a worker share: where it runs, its filter, its fds.
ChildPlan child_plan(const IsolationPlan& iso, const std::string& workdir,
                     const std::string& tmpfs_options, const std::vector<sock_filter>& filter,
                     int req_fd, int resp_fd, int devnull) {
  ChildPlan c;
  c.iso = iso;
  c.workdir = workdir.c_str();
  c.tmpfs_options = tmpfs_options.c_str();
  c.filter = filter.data();
  c.filter_len = static_cast<unsigned short>(filter.size());
  c.req_fd = req_fd;
  c.resp_fd = resp_fd;
  c.devnull = devnull;
  return c;
}

/// Which mechanisms this machine permits, tried from the strongest set down (each try is one
/// short-lived child that runs the whole set-up and exits before execve).
Probe probe_isolation(bool namespaces, bool drop, bool seccomp, const std::string& tmp) {
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
    ChildPlan c = child_plan(plan, dir, tmpfs_opts, filter, p1[0], p2[1], devnull);
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

}  // namespace

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
    ChildPlan c = child_plan(iso, workdir_, tmpfs_opts, filter, req[0], resp[1], devnull);
    c.lim.session_cpu_s = o.session_cpu_s > 0 ? o.session_cpu_s : 20 * o.cpu_s;
    c.lim.memory_bytes = o.memory_bytes;
    c.lim.file_size_bytes = o.file_size_bytes;
    c.lim.max_processes = o.max_processes;
    c.lim.max_open_files = o.max_open_files;
    c.lim.workdir_bytes = o.workdir_bytes;
    c.exe = args_[0].c_str();
    c.argv = argv.data();
    c.envp = envp.data();
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

namespace {

exec_detail::Probe probe_cached(bool ns, bool drop, bool sc, const std::string& tmp) {
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

CodeResult closed_result() {
  CodeResult r;
  r.output = "Code execute Error: SandboxClosed: the sandbox pool was shut down";
  return r;
}

}  // namespace

SandboxPool::SandboxPool(SandboxOptions opts, const char* source_dir) : opts_(std::move(opts)) {
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
  exe_ = exec_detail::resolve_python(opts_.python, source_dir);
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

SandboxPool::~SandboxPool() { shutdown(); }

void SandboxPool::shutdown() {
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

uint64_t SandboxPool::open_session() {
  std::lock_guard<std::mutex> lk(mu_);
  GENPRM_CHECK(!shut_down_, "SandboxPool: the pool was shut down");
  uint64_t id = next_session_++;
  sessions_[id];
  return id;
}

void SandboxPool::close_session(uint64_t session) {
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

void SandboxPool::submit(uint64_t session, std::string code,
                         std::function<void(CodeResult)> on_done) {
  enqueue(session, Job{std::move(code), std::move(on_done), nullptr});
}

size_t SandboxPool::poll() {
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

bool SandboxPool::wait_for_result(double timeout_s) {
  std::unique_lock<std::mutex> lk(mu_);
  return done_cv_.wait_for(lk, std::chrono::duration<double>(timeout_s), [&] {
    return !done_.empty() || (queued_ == 0 && running_ == 0) || stop_;
  }) && !done_.empty();
}

size_t SandboxPool::wait_and_poll(double timeout_s) {
  wait_for_result(timeout_s);
  return poll();
}

bool SandboxPool::idle() const {
  std::lock_guard<std::mutex> lk(mu_);
  return queued_ == 0 && running_ == 0 && done_.empty();
}

CodeResult SandboxPool::run(uint64_t session, const std::string& code) {
  auto p = std::make_shared<std::promise<CodeResult>>();
  auto f = p->get_future();
  enqueue(session, Job{code, nullptr, p});
  return f.get();
}

std::string SandboxPool::describe_isolation() const {
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

size_t SandboxPool::live_workers() const {
  std::lock_guard<std::mutex> lk(mu_);
  size_t n = warm_.size() + busy_workers_;
  for (const auto& [id, s] : sessions_) n += s.worker ? 1 : 0;
  return n;
}

long SandboxPool::session_worker_pid(uint64_t session) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = sessions_.find(session);
  return (it != sessions_.end() && it->second.worker) ? it->second.worker->pid() : -1;
}

std::unique_ptr<exec_detail::Worker> SandboxPool::spawn() {
  auto w = std::make_unique<exec_detail::Worker>(exe_, opts_, probe_.plan, filter_, temp_root_);
  std::string why;
  GENPRM_CHECK(w->wait_ready(opts_.startup_timeout_s, why),
               "sandbox: worker {} did not start: it {} (check SandboxOptions.python and "
               "preload)", exe_, why);
  return w;
}

void SandboxPool::enqueue(uint64_t session, Job job) {
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

std::unique_ptr<exec_detail::Worker> SandboxPool::take_worker(std::string& error) {
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

CodeResult SandboxPool::execute(exec_detail::Worker& w, const std::string& code, bool& lost,
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

void SandboxPool::touch_session(uint64_t sid) {
  auto it = sessions_.find(sid);
  if (it != sessions_.end()) it->second.last_used = ++tick_;
}

void SandboxPool::evict_idle_workers_over_limit() {
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

void SandboxPool::worker_loop() {
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

void SandboxPool::spawner_loop() {
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

}  // namespace genprm
