// The code of exec/sandbox.hpp: one worker process (start-up, frame protocol, kill and reap) and
// the pool (isolation probe, threads, sessions). Compiled once into genprm_exec rather than in
// every unit that includes the header (all of prm/genprm.hpp's users).
#include "genprm/exec/sandbox.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
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

/// sys.path and the base prefixes of interpreter `exe` in isolated mode (as the worker will run
/// it), asked once from the interpreter itself. Empty when it cannot be asked.
std::vector<std::string> interpreter_paths(const std::string& exe, double timeout_s) {
  static const char* script =
      "import sys\n"
      "sys.stdout.write('\\0'.join([sys.base_prefix, sys.base_exec_prefix] + sys.path))";
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {};
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, devnull, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, devnull, 2);
  std::vector<std::string> args = {exe, "-I", "-B", "-c", script};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {const_cast<char*>("LANG=C.UTF-8"), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  if (devnull >= 0) ::close(devnull);
  std::string text;
  if (rc == 0) {
    const double deadline = now_s() + timeout_s;
    char buf[4096];
    for (;;) {
      const double left = deadline - now_s();
      pollfd p{out[0], POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) {
        ::kill(pid, SIGKILL);
        text.clear();
        break;
      }
      ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) text.clear();
  }
  ::close(out[0]);
  std::vector<std::string> paths;
  for (size_t start = 0; !text.empty() && start <= text.size();) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    paths.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return paths;
}

/// What the minimal root shows for interpreter `exe`: the interpreter (its symlink chain), a
/// venv's pyvenv.cfg, sys.path, the base prefixes' lib directories (libpython of a shared
/// build), the system library directories and the dynamic linker's cache, and the devices
/// Python and common libraries open. Nothing else of the host: no /etc/passwd, /home, /root,
/// the project tree or other work directories. Cached per interpreter. `error` is set (and the
/// layout empty) when the interpreter could not tell its paths.
exec_detail::RootLayout minimal_root_layout(const std::string& exe, double timeout_s,
                                            std::string& error) {
  static std::mutex m;
  static std::map<std::string, std::pair<exec_detail::RootLayout, std::string>> cache;
  std::lock_guard<std::mutex> lk(m);
  auto it = cache.find(exe);
  if (it == cache.end()) {
    exec_detail::RootLayout layout;
    std::string err;
    const std::vector<std::string> paths = interpreter_paths(exe, timeout_s);
    if (paths.size() < 2) {
      err = fmt::format("{} -I -c did not report sys.path", exe);
    } else {
      layout.add(exe, true);
      const std::string bin = exe.substr(0, exe.rfind('/'));
      for (const std::string& dir : {bin, bin.substr(0, bin.rfind('/'))})
        layout.add(dir + "/pyvenv.cfg", true);  // only where it exists
      layout.add(paths[0] + "/lib", true);
      layout.add(paths[1] + "/lib", true);
      for (size_t i = 2; i < paths.size(); ++i) layout.add(paths[i], true);
      for (const char* p : {"/lib", "/lib32", "/lib64", "/libx32", "/usr/lib", "/usr/lib32",
                            "/usr/lib64", "/usr/libx32", "/etc/ld.so.cache", "/dev/null",
                            "/dev/zero", "/dev/urandom", "/dev/random"})
        layout.add(p, true);
    }
    it = cache.emplace(exe, std::make_pair(std::move(layout), std::move(err))).first;
  }
  error = it->second.second;
  return it->second.first;
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

/// Field `field` (numbered from 1 as in proc(5); 3 or more) of /proc/<pid>/stat, -1 when
/// unreadable. 3: state (its character), 20: threads, 22: start time.
long long proc_stat_field(long pid, int field) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return -1;
  ++p;
  for (int f = 3;; ++f) {
    while (*p == ' ') ++p;
    if (*p == '\0') return -1;
    if (f == field) return f == 3 ? static_cast<unsigned char>(*p) : std::strtoll(p, nullptr, 10);
    while (*p != ' ' && *p != '\0') ++p;
  }
}

/// Names this engine process for the directories it creates: PID namespace inode, pid, start
/// time. A directory so named is provably this engine's, and provably stale once no process
/// with that pid and start time exists in that PID namespace.
std::string engine_tag() {
  struct stat ns {};
  unsigned long long ino = ::stat("/proc/self/ns/pid", &ns) == 0 ? ns.st_ino : 0;
  return fmt::format("{}.{}.{}", ino, ::getpid(), proc_stat_field(::getpid(), 22));
}

/// Removes what crashed engines left in `root`: directories named genprm-sandbox-<tag>-XXXXXX
/// or genprm-probe-<tag>-XXXXXX (see engine_tag) of this PID namespace whose engine is gone,
/// real directories (not symlinks) owned by this uid or `sandbox_uid`. Returns how many.
int remove_stale_workdirs(const std::string& root, unsigned sandbox_uid) {
  struct stat ns {};
  if (::stat("/proc/self/ns/pid", &ns) != 0) return 0;
  DIR* d = ::opendir(root.c_str());
  if (d == nullptr) return 0;
  int removed = 0;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    size_t skip = 0;
    for (const char* prefix : {"genprm-sandbox-", "genprm-probe-"}) {
      if (name.rfind(prefix, 0) == 0) skip = std::strlen(prefix);
    }
    if (skip == 0) continue;
    unsigned long long ino = 0;
    long pid = 0;
    long long start = 0;
    int used = 0;
    if (std::sscanf(name.c_str() + skip, "%llu.%ld.%lld-%n", &ino, &pid, &start, &used) != 3 ||
        used == 0 || name.size() != skip + static_cast<size_t>(used) + 6 || ino != ns.st_ino ||
        pid <= 0)
      continue;
    const std::string path = root + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
        (st.st_uid != ::geteuid() && st.st_uid != sandbox_uid))
      continue;
    if (proc_stat_field(pid, 22) == start) continue;  // its engine still runs
    stale.push_back(path);
  }
  ::closedir(d);
  for (const auto& path : stale) {
    remove_tree(path);
    removed += ::access(path.c_str(), F_OK) != 0 ? 1 : 0;
  }
  return removed;
}

/// `s` with every byte sequence that is not valid UTF-8 replaced by U+FFFD (a worker's text is
/// not trusted; Python's str() of it must never fail).
std::string valid_utf8(std::string s) {
  auto bad_at = [&](size_t i) -> size_t {  // length of the valid sequence at i, 0 if invalid
    const auto* u = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    unsigned c = u[i];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return 0;
    }
    if (i + len > n || u[i + 1] < lo || u[i + 1] > hi) return 0;
    for (size_t k = 2; k < len; ++k)
      if (u[i + k] < 0x80 || u[i + k] > 0xBF) return 0;
    return len;
  };
  size_t i = 0;
  while (i < s.size()) {
    size_t len = bad_at(i);
    if (len == 0) break;
    i += len;
  }
  if (i == s.size()) return s;
  std::string out = s.substr(0, i);
  while (i < s.size()) {
    size_t len = bad_at(i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s, i, len);
      i += len;
    }
  }
  return out;
}

/// The worker's seccomp filter as hex, for its command line (struct sock_filter is 8 bytes).
std::string filter_hex(const std::vector<sock_filter>& f) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  const auto* b = reinterpret_cast<const unsigned char*>(f.data());
  for (size_t i = 0; i < f.size() * sizeof(sock_filter); ++i) {
    out += digits[b[i] >> 4];
    out += digits[b[i] & 15];
  }
  return out;
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
  c.host_pid = ::getpid();
  return c;
}

/// Which mechanisms this machine permits, tried from the strongest set down (each try is one
/// short-lived child that runs the whole set-up and exits before execve).
Probe probe_isolation(bool namespaces, bool drop, bool seccomp, const std::string& tmp,
                      const RootLayout* layout) {
  Probe out;
  const bool root = ::geteuid() == 0;
  std::string dir = tmp + "/genprm-probe-" + engine_tag() + "-XXXXXX";
  GENPRM_CHECK(::mkdtemp(dir.data()) != nullptr, "sandbox: mkdtemp in {}: {}", tmp,
               std::strerror(errno));
  struct Cleanup {  // every exit path, exceptions included
    std::string dir;
    int fds[5] = {-1, -1, -1, -1, -1};
    ~Cleanup() {
      for (int fd : fds)
        if (fd >= 0) ::close(fd);
      ::rmdir(dir.c_str());
    }
  } cleanup{dir};
  if (root && ::chown(dir.c_str(), 65534, 65534) != 0) {
    // the probe then reports the chdir step as refused
  }
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  cleanup.fds[0] = devnull;
  int p1[2] = {-1, -1}, p2[2] = {-1, -1};
  bool piped = ::pipe2(p1, O_CLOEXEC) == 0 && ::pipe2(p2, O_CLOEXEC) == 0;
  cleanup.fds[1] = p1[0]; cleanup.fds[2] = p1[1]; cleanup.fds[3] = p2[0]; cleanup.fds[4] = p2[1];
  GENPRM_CHECK(devnull >= 0 && piped, "sandbox: probe set-up failed: {}", std::strerror(errno));
  std::vector<sock_filter> filter = seccomp_program();
  std::string tmpfs_opts = fmt::format("size=1m,mode=0700,uid={},gid={}",
                                       root && drop ? 65534u : ::geteuid(),
                                       root && drop ? 65534u : ::getegid());
  auto attempt = [&](IsolationPlan plan, const std::string& what) {
    ChildPlan c = child_plan(plan, dir, tmpfs_opts, filter, p1[0], p2[1], devnull);
    c.dry_run = true;
    RootProgram root;
    if (plan.minimal_root) {
      root.build(*layout, dir, dir, tmpfs_opts, plan.mount_proc);
      c.root = &root;
    }
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
    // With an IPC namespace first; only when every set with it is refused, without.
    bool found = false;
    for (bool ipc : {true, false}) {
      IsolationPlan full = base;
      full.user_ns = full.mount_ns = full.pid_ns = full.net_ns = full.mount_proc = true;
      full.ipc_ns = ipc;
      const std::string i = ipc ? "+ipc" : "";
      std::vector<std::pair<IsolationPlan, std::string>> tries;
      tries.push_back({full, "user+mount+pid+net" + i + " namespaces"});
      IsolationPlan noproc = full;
      noproc.mount_proc = false;
      tries.push_back({noproc, "user+mount+pid+net" + i + " namespaces without own /proc"});
      if (root) {
        IsolationPlan nouser = full;
        nouser.user_ns = false;
        tries.push_back({nouser, "mount+pid+net" + i + " namespaces"});
      }
      IsolationPlan netonly = base;
      netonly.net_ns = true;
      netonly.ipc_ns = ipc;
      netonly.user_ns = !root;
      tries.push_back({netonly, "network" + i + " namespace"});
      for (auto [plan, what] : tries) {
        // each set with a mount namespace: with the minimal root first, then without
        for (bool root : {true, false}) {
          if (root && (!plan.mount_ns || layout == nullptr)) continue;
          plan.minimal_root = root;
          if (attempt(plan, what + (root ? " + minimal root" : ""))) {
            best = plan;
            found = true;
            break;
          }
        }
        if (found) break;
      }
      if (found) break;
    }
  }
  out.plan = best;
  return out;
}

}  // namespace

/// One worker process: a Python interpreter holding one session's namespace.
class Worker {
 public:
  Worker(const std::string& exe, const SandboxOptions& o, const IsolationPlan& iso,
         const std::vector<sock_filter>& filter, const std::string& temp_root,
         const RootLayout* root_layout)
      : iso_(iso) {
    workdir_ = temp_root + "/genprm-sandbox-" + engine_tag() + "-XXXXXX";
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
             (iso.seccomp && !o.allow_subprocess) ? filter_hex(worker_seccomp_program())
                                                  : std::string()};
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
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, req) != 0) {
      remove_tree(workdir_);
      throw Error(fmt::format("sandbox: socketpair: {}", std::strerror(errno)));
    }
    if (::pipe2(resp, O_CLOEXEC) != 0) {
      ::close(req[0]); ::close(req[1]);
      remove_tree(workdir_);
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
    RootProgram root;  // read by the child only until start_child returns
    if (iso.minimal_root && root_layout != nullptr) {
      // the root's tmpfs goes on the work dir's host path; inside, the work dir keeps its path
      root.build(*root_layout, workdir_, workdir_, tmpfs_opts, iso.mount_proc);
      c.root = &root;
    }
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
    rng_.seed(std::random_device{}() ^ (static_cast<uint64_t>(pid_) << 32));
  }

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { kill(); }

  /// Waits for the 'R' frame. False (worker killed, `why` set) when it does not come in time.
  bool wait_ready(double timeout_s, std::string& why) {
    char kind = 0;
    std::string text;
    if (!read_frame(now_s() + timeout_s, 0, kind, text, why)) return false;
    if (kind != 'R') {
      why = "worker sent an unexpected first frame";
      kill();
      return false;
    }
    hardening_ = text;  // no block has run yet: this frame is the worker's own
    no_processes_ = hardening_.find("nofork=1") != std::string::npos;
    threads_at_ready_ = proc_stat_field(pid_, 20);
    return true;
  }

  /// What the worker reported it hardened itself with ("dumpable=0 noexec=1 nofork=1").
  const std::string& hardening() const { return hardening_; }

  bool alive() const { return pid_ > 0; }
  long pid() const { return pid_; }
  const std::string& workdir() const { return workdir_; }
  const std::string& lost_reason() const { return lost_reason_; }

  /// Sends `code`, waits for the reply until `hard_deadline`. Returns false when the worker is
  /// gone (killed at the deadline, crashed, protocol violation): `why`, `timed_out` say which.
  /// Every read and write has `hard_deadline`.
  bool execute(const std::string& code, double hard_deadline, char& kind, std::string& text,
               std::string& why, bool& timed_out) {
    timed_out = false;
    uint64_t token = 0;
    while (token == 0) token = rng_();  // 0 is the ready frame's
    std::string frame(12, '\0');
    const uint32_t n = static_cast<uint32_t>(code.size() + 8);
    for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    for (int i = 0; i < 8; ++i) frame[4 + i] = static_cast<char>((token >> (8 * i)) & 0xff);
    frame += code;
    const int w = write_all(frame, hard_deadline);
    if (w != 1) {
      if (w < 0) timed_out = timed_out_ = killed_by_us_ = true;
      why = finish_lost(w < 0 ? "stopped reading its requests and was killed at the wall-clock "
                                "limit"
                              : "stopped reading its requests");
      return false;
    }
    if (!read_frame(hard_deadline, token, kind, text, why)) {
      timed_out = timed_out_;
      return false;
    }
    if (kind != 'O' && kind != 'E' && kind != 'T') {
      killed_by_us_ = true;
      why = finish_lost("sent a reply of unknown kind (protocol violation)");
      return false;
    }
    return true;
  }

  /// After a reply: what of the block still runs, "" when nothing. Threads always count (a
  /// block's thread could fork, forge frames or burn CPU with no block running); processes
  /// where the worker's filter does not deny them. A joined thread can take a moment to leave
  /// the kernel's list, so this waits up to 0.3 s before it answers. A worker that died
  /// meanwhile is a leftover too (it did not wait for its next request).
  std::string leftovers() {
    const double give_up = now_s() + 0.3;
    for (;;) {
      const long long state = proc_stat_field(pid_, 3);
      if (state < 0 || state == 'Z' || state == 'X') return "ended after its block returned";
      const long long threads = proc_stat_field(pid_, 20);
      const bool extra_threads = threads >= 0 && threads_at_ready_ > 0 &&
                                 threads > threads_at_ready_;
      const bool children = !no_processes_ && has_children();
      if (!extra_threads && !children) return "";
      if (now_s() >= give_up) {
        return extra_threads
                   ? fmt::format("left {} thread(s) running after its block returned",
                                 threads - threads_at_ready_)
                   : std::string("left processes running after its block returned");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  /// Before a block: "" when the worker is idle as it should be; else it wrote outside a reply
  /// (protocol violation) or died since its last block, and is now ended: the reason.
  std::string problem_between_blocks() {
    pollfd p{from_worker_, POLLIN, 0};
    if (from_worker_ < 0 || ::poll(&p, 1, 0) <= 0) return "";
    char c = 0;
    if (::read(from_worker_, &c, 1) > 0) {
      killed_by_us_ = true;
      return finish_lost("wrote to the reply channel outside a reply (protocol violation)");
    }
    return finish_lost("ended") + " between blocks";
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
  bool has_children() const {
    char path[96];
    std::snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", pid_, pid_);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char b = 0;
    ssize_t n = ::read(fd, &b, 1);
    ::close(fd);
    return n > 0;
  }

  // Writes all of `data` before the deadline. 1 ok, 0 the worker is gone, -1 deadline (a block
  // can stop the worker from reading: the host must never wait on it unboundedly).
  int write_all(const std::string& data, double deadline) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t w = ::send(to_worker_, data.data() + off, data.size() - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        off += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const double left = deadline - now_s();
        if (left <= 0) return -1;
        pollfd p{to_worker_, POLLOUT, 0};
        ::poll(&p, 1, static_cast<int>(std::min(left * 1000.0 + 1, 1e9)));
        continue;
      }
      return 0;
    }
    return 1;
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

  // One reply: u32 length, the request's 8-byte token, kind, text (made valid UTF-8).
  bool read_frame(double deadline, uint64_t token, char& kind, std::string& text,
                  std::string& why) {
    unsigned char hdr[4];
    int r = read_exact(reinterpret_cast<char*>(hdr), 4, deadline);
    uint32_t n = 0;
    if (r == 1) {
      n = hdr[0] | (hdr[1] << 8) | (hdr[2] << 16) | (static_cast<uint32_t>(hdr[3]) << 24);
      if (n < 9 || n > max_frame_) {
        killed_by_us_ = true;
        why = finish_lost("sent a malformed reply (protocol violation)");
        return false;
      }
      std::string body(n, '\0');
      r = read_exact(body.data(), n, deadline);
      if (r == 1) {
        uint64_t got = 0;
        for (int i = 0; i < 8; ++i)
          got |= static_cast<uint64_t>(static_cast<unsigned char>(body[i])) << (8 * i);
        if (got != token) {
          killed_by_us_ = true;
          why = finish_lost("sent a reply to a request it was not given (protocol violation)");
          return false;
        }
        kind = body[8];
        text = valid_utf8(body.substr(9));
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
  bool no_processes_ = false;     // the worker's filter denies new processes
  long long threads_at_ready_ = -1;
  std::mt19937_64 rng_;
  size_t max_frame_ = 0;
  std::string workdir_, lost_reason_, hardening_;
  std::vector<std::string> args_, env_;
};

}  // namespace exec_detail

namespace {

exec_detail::Probe probe_cached(bool ns, bool drop, bool sc, const std::string& tmp,
                                const std::string& exe, const exec_detail::RootLayout* layout) {
  static std::mutex m;
  static std::map<std::tuple<bool, bool, bool, std::string, std::string>, exec_detail::Probe>
      cache;
  std::lock_guard<std::mutex> lk(m);
  // the layout is a function of the interpreter: "" stands for none
  auto key = std::make_tuple(ns, drop, sc, tmp, layout != nullptr ? exe : std::string());
  auto it = cache.find(key);
  if (it == cache.end()) {
    it = cache.emplace(key, exec_detail::probe_isolation(ns, drop, sc, tmp, layout)).first;
    for (const auto& r : it->second.refused) log(LogLevel::Info, "sandbox probe: {}", r);
  }
  return it->second;
}

/// Stale directories are looked for once per process and temp root.
int remove_stale_workdirs_once(const std::string& root, unsigned sandbox_uid) {
  static std::mutex m;
  static std::set<std::string> done;
  std::lock_guard<std::mutex> lk(m);
  if (!done.insert(root).second) return 0;
  return exec_detail::remove_stale_workdirs(root, sandbox_uid);
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
  stale_removed_ = remove_stale_workdirs_once(temp_root_, 65534);
  if (opts_.use_namespaces && opts_.minimal_root) {
    root_layout_ = exec_detail::minimal_root_layout(exe_, opts_.startup_timeout_s, root_error_);
  }
  const bool with_root = opts_.use_namespaces && opts_.minimal_root && root_error_.empty();
  probe_ = probe_cached(opts_.use_namespaces, opts_.drop_privileges, opts_.use_seccomp,
                        temp_root_, exe_, with_root ? &root_layout_ : nullptr);
  if (!root_error_.empty()) probe_.refused.push_back("minimal root: " + root_error_);
  if (probe_.plan.seccomp) filter_ = exec_detail::seccomp_program();
  warm_target_ = opts_.warm_workers < 0 ? opts_.workers : opts_.warm_workers;
  // Workers die with the thread that cloned them (PR_SET_PDEATHSIG), so only the pool's own
  // threads start them. The spawner starts the first one now, so that a broken interpreter path
  // fails here, loudly.
  std::promise<void> first;
  std::future<void> first_started = first.get_future();
  spawner_ = std::thread([this, &first] { spawner_loop(&first); });
  try {
    first_started.get();
  } catch (...) {
    spawner_.join();
    throw;
  }
  for (int i = 0; i < opts_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
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
      "tasks (processes + threads, the main thread included) {}, open files {}, no core dumps, "
      "no locked memory\n",
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
  s += fmt::format("ipc namespace: {}\n",
                   p.ipc_ns ? "yes (own SysV IPC objects and POSIX message queues)"
                            : (p.seccomp ? "no (SysV IPC and POSIX message queue calls denied "
                                           "by seccomp)"
                                         : "no (host SysV IPC reachable!)"));
  s += fmt::format("pid namespace: {}\n",
                   p.pid_ns ? "yes (worker is init; leftover processes killed after each block)"
                            : "no");
  if (p.mount_ns && p.minimal_root) {
    s += fmt::format("mount namespace: yes (minimal root: a tmpfs root, pivot_root, the host's "
                     "tree unmounted; private tmpfs workdir of {} MiB{})\n",
                     opts_.workdir_bytes >> 20, p.mount_proc ? ", own /proc" : ", no /proc");
    std::string shown;
    for (const auto& b : root_layout_.binds()) shown += (shown.empty() ? "" : ", ") + b;
    s += "filesystem view: minimal root, read-only: only " + shown +
         " and the work dir; other host files (/etc/passwd, /home, /root, the project tree, "
         "other work dirs) do not exist\n";
  } else {
    s += fmt::format("mount namespace: {}\n",
                     p.mount_ns ? (p.mount_proc ? "yes (all mounts read-only, private tmpfs "
                                                  "workdir, own /proc)"
                                                : "yes (all mounts read-only, private tmpfs "
                                                  "workdir; host /proc)")
                                : "no (private temp dir only; the filesystem is as writable as "
                                  "the worker's uid allows)");
    s += p.mount_ns ? "filesystem view: the host's whole tree, read-only (no minimal root: "
                      "world-readable host files can be read)\n"
                    : "filesystem view: the host's whole tree (no mount namespace: "
                      "world-readable host files can be read, writable ones written)\n";
  }
  s += fmt::format("privilege drop: {}\n",
                   p.drop_uid ? fmt::format("yes (uid/gid {}, no supplementary groups)", p.uid)
                              : (::geteuid() == 0 ? "no (disabled)" : "not needed (not root)"));
  s += fmt::format("no_new_privs: yes\nseccomp: {}\n",
                   p.seccomp ? "yes (deny-list: ptrace, mount, namespaces, bpf, keyctl, "
                               "io_uring, SysV IPC, POSIX message queues, socket() of any "
                               "family (socketpair only), file locks, ...)"
                             : "no (sockets, io_uring, host IPC and file locks reachable!)");
  const bool noexec = hardening_.find("noexec=1") != std::string::npos;
  s += fmt::format("running other programs (execve): {}\n",
                   noexec ? "blocked (worker's own seccomp filter, EPERM)"
                          : (opts_.allow_subprocess ? "allowed (allow_subprocess)" : "allowed"));
  const bool nofork = hardening_.find("nofork=1") != std::string::npos;
  s += fmt::format(
      "new processes (fork, vfork, clone without CLONE_THREAD): {}\n",
      nofork ? fmt::format("denied (worker's own seccomp filter, EPERM): one process holds "
                           "everything a block starts, its threads share one address-space "
                           "limit; at most {} threads, the main one included; memfd_create "
                           "denied{}",
                           opts_.max_processes,
                           p.mount_ns ? fmt::format("; work dir files in a tmpfs of {} MiB",
                                                    opts_.workdir_bytes >> 20)
                                      : std::string())
             : fmt::format("allowed (each process has its own address-space limit; at most {} "
                           "processes and threads)", opts_.max_processes));
  s += "leftovers: a worker still running a thread or process of a block after its reply is "
       "ended before the next block (the session restarts fresh)\n";
  s += "parent death: workers are SIGKILLed when the thread that started them (the pool's) or "
       "the engine dies (PR_SET_PDEATHSIG, parent checked at start-up)\n";
  s += "protocol: replies checked for length, request token and kind, text made valid UTF-8; "
       "every read and write has the block's deadline\n";
  s += fmt::format("work directories: removed when a worker ends; stale ones of dead engines "
                   "removed at start ({} this time)\n", stale_removed_);
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
  auto w = std::make_unique<exec_detail::Worker>(
      exe_, opts_, probe_.plan, filter_, temp_root_,
      probe_.plan.minimal_root ? &root_layout_ : nullptr);
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
    bool reset = s.reset_pending;
    std::string reset_reason = s.reset_reason;
    s.reset_pending = false;
    ++busy_workers_;
    lk.unlock();

    CodeResult r;
    bool lost = false;
    std::string lost_why, error;
    if (w) {
      // A worker that wrote a frame nobody asked for, or died, since its last block: replaced
      // before this block, which then runs fresh.
      std::string problem = w->problem_between_blocks();
      if (!problem.empty()) {
        w.reset();
        reset = true;
        reset_reason = problem;
      }
    }
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
      if (!lost) {
        // Nothing a block started may outlive it: a worker with leftovers is ended now.
        lost_why = w->leftovers();
        lost = !lost_why.empty();
      }
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

void SandboxPool::spawner_loop(std::promise<void>* first) {
  try {
    std::unique_ptr<exec_detail::Worker> w;
    try {
      w = spawn();
    } catch (const Error& e) {
      // The probe stops before execve: an interpreter that cannot run inside the minimal root
      // (a library outside the bound directories) shows only now. Fall back to the read-only
      // host tree, and say so. Nothing else runs yet, so probe_ may change here.
      if (!probe_.plan.minimal_root) throw;
      probe_.plan.minimal_root = false;
      probe_.refused.push_back(fmt::format("minimal root: the first worker did not start in it: {}",
                                           e.what()));
      log(LogLevel::Warn, "sandbox: {}", probe_.refused.back());
      w = spawn();
    }
    hardening_ = w->hardening();
    std::lock_guard<std::mutex> lk(mu_);
    warm_.push_back(std::move(w));
  } catch (...) {
    first->set_exception(std::current_exception());
    return;
  }
  first->set_value();  // `first` is gone after this line
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
