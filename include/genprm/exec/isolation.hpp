#pragma once
// Starting one isolated Python worker process (Linux only), and probing at start-up which
// isolation mechanisms this machine permits. Used by exec/sandbox.hpp; the code is compiled
// into the library (src/exec/isolation.cpp).
//
// The worker is created with clone(2) straight from the host process (no shell), so it can
// become init of a fresh PID namespace; CLONE_VM | CLONE_VFORK as in posix_spawn, so the host's
// memory is not copied. Between clone and execve the child only makes plain system calls on
// memory prepared beforehand (async-signal-safe: the host is multi-threaded).
// A failure in the child is written as {step, errno} to a close-on-exec pipe, so the host learns
// which mechanism failed; exec success closes that pipe.
//
// Mechanisms, each optional and chosen by probe_isolation():
//   user namespace   only uid/gid 65534 (or the caller's own uid when not root) exists inside;
//                    process counts (RLIMIT_NPROC) are per worker, ptrace across workers fails
//   mount namespace  minimal root: a new tmpfs root holding only read-only bind mounts of the
//                    interpreter, what it imports (sys.path), the system libraries and a few
//                    devices, the private size-limited tmpfs work dir and /proc of the worker's
//                    own PID namespace; pivot_root into it and the host's tree is unmounted.
//                    Fallback (minimal root refused): every host mount read-only
//                    (mount_setattr AT_RECURSIVE) plus the private work dir
//   PID namespace    the worker is init: it sees only its own processes, kills what a block left
//                    behind, and everything in it dies with it
//   network ns       no interfaces but a downed loopback: no network at all
//   IPC namespace    own SysV message queues, semaphores, shared memory and POSIX queues
//   uid drop         setgroups({}), setresgid/setresuid(65534) when started as root
//   no_new_privs + seccomp deny-list (ptrace, mount, namespaces, bpf, keyctl, socket(), io_uring,
//                    SysV IPC, POSIX queues, file locks...)
//   parent death     PR_SET_PDEATHSIG(SIGKILL): the worker dies with the host thread that cloned
//                    it (the pool clones only from its own long-lived threads)
//   rlimits          CPU, address space, file size, processes, open files, no core dumps
#include <linux/filter.h>
#include <sched.h>

#include <cstddef>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace genprm::exec_detail {

/// Which mechanisms a worker is started with. All false = rlimits, scrubbed env and pipes only.
struct IsolationPlan {
  bool user_ns = false;
  bool mount_ns = false;   // read-only mounts + private tmpfs workdir
  bool mount_proc = false; // own /proc (needs mount_ns and pid_ns)
  bool minimal_root = false;  // pivot_root into a root of read-only binds (needs mount_ns)
  bool pid_ns = false;
  bool net_ns = false;
  bool ipc_ns = false;
  bool drop_uid = false;   // setresuid/setresgid to `uid` (when the host runs as root)
  bool seccomp = false;
  unsigned uid = 65534, gid = 65534;

  int clone_flags() const {
    return (user_ns ? CLONE_NEWUSER : 0) | (mount_ns ? CLONE_NEWNS : 0) |
           (pid_ns ? CLONE_NEWPID : 0) | (net_ns ? CLONE_NEWNET : 0) |
           (ipc_ns ? CLONE_NEWIPC : 0);
  }
};

/// Resource limits applied in the child before execve (hard = soft unless noted).
struct WorkerLimits {
  double session_cpu_s = 60;   // hard RLIMIT_CPU for the worker's lifetime; per block the worker
                               // lowers the soft limit to (used + cpu_s)
  size_t memory_bytes = 2ull << 30;
  size_t file_size_bytes = 16u << 20;
  int max_processes = 32;
  int max_open_files = 64;
  size_t workdir_bytes = 64u << 20;  // tmpfs size in mount-namespace mode
};

/// One step of building the minimal root in the child; paths are absolute (host) paths,
/// prepared by RootProgram.
struct RootOp {
  enum Kind : int {
    kTmpfs,         // mount tmpfs at `path`, options `arg`
    kMkdir,         // mkdir `path` 0755
    kSymlink,       // symlink `path` -> `arg`
    kFile,          // empty file at `path` (mount point of a file bind)
    kBind,          // bind `arg` (recursively) onto `path`
    kProc,          // mount proc at `path`
    kReadonly,      // `path` and every mount below it read-only, nosuid, nodev
    kReadonlyDev,   // `path` alone read-only, nosuid (a device bind: nodev would disable it)
    kPivot,         // pivot_root into `path`, detach the old root
  };
  int kind;
  const char* path;
  const char* arg;
};

/// What the minimal root shows, as host paths: computed on the host (lstat, readlink), so that
/// every path resolves inside the root as on the host (symlinks are recreated, leaves bound).
class RootLayout {
 public:
  /// Makes `path` resolve inside the root: its directories are created, its symlinks recreated
  /// (their targets made available in turn), its leaf bound read-only (`bind`) or only created
  /// as a directory (a mount point). False when `path` does not exist on the host.
  bool add(const std::string& path, bool bind);
  /// The bound host paths, outermost only (a bind inside another is dropped), sorted.
  std::vector<std::string> binds() const;
  /// Host paths that are character or block devices among binds().
  bool is_device(const std::string& path) const { return devices_.count(path) > 0; }

 private:
  friend class RootProgram;
  bool add_resolved(std::string path, bool bind, int depth);
  struct Node {
    int kind;         // RootOp::kMkdir, kSymlink or kFile
    std::string arg;  // symlink text
  };
  std::map<std::string, Node> nodes_;  // created in the root's tmpfs, sorted: parents first
  std::set<std::string> binds_, devices_;
};

/// The ops and the strings they point to for one child (built before clone: the child may not
/// allocate). `root` is the host directory the new root's tmpfs is mounted on, `workdir` the
/// work directory's path (inside the root as on the host).
class RootProgram {
 public:
  void build(const RootLayout& layout, const std::string& root, const std::string& workdir,
             const std::string& workdir_tmpfs_options, bool mount_proc);
  const RootOp* ops() const { return ops_.data(); }
  int size() const { return static_cast<int>(ops_.size()); }
  /// "bind /usr/lib" etc. for op `i`, for error messages.
  std::string describe(int i) const;

 private:
  const char* keep(std::string s) {
    strings_.push_back(std::move(s));
    return strings_.back().c_str();
  }
  std::deque<std::string> strings_;  // stable addresses
  std::vector<RootOp> ops_;
  std::vector<const char*> host_paths_;  // per op: the host path, for describe()
};

/// Everything the child needs, prepared before clone (the child must not allocate).
struct ChildPlan {
  IsolationPlan iso;
  WorkerLimits lim;
  const char* workdir = nullptr;
  const char* tmpfs_options = nullptr;
  const char* exe = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const sock_filter* filter = nullptr;
  unsigned short filter_len = 0;
  const RootProgram* root = nullptr;  // iso.minimal_root: how to build the root
  int sync_fd = -1;   // read end: one byte once the host wrote the uid/gid maps
  int err_fd = -1;    // write end, close-on-exec
  int req_fd = -1;    // read end of host -> worker
  int resp_fd = -1;   // write end of worker -> host
  int devnull = -1;
  long host_pid = 0;     // getpid() of the host: the child checks it is still its parent
  bool dry_run = false;  // probe: stop right before execve
};

/// Builds the BPF program installed before execve: kill on foreign architecture, EPERM for
/// syscalls a verification script never needs and that widen the attack surface (io_uring, SysV
/// IPC and POSIX message queues among them), EACCES for socket() (socketpair stays), ENOLCK for
/// flock and fcntl record locks and leases, EPERM for clone with namespace flags. Empty when the
/// architecture is unknown.
std::vector<sock_filter> seccomp_program();

/// The filter the worker adds to itself after start-up when blocks may not start programs:
/// execve/execveat and every way to a new process (fork, vfork, clone without CLONE_THREAD)
/// fail with EPERM, clone3 with ENOSYS (glibc falls back to clone for threads). One process
/// then holds everything a block starts, under one RLIMIT_AS. Empty when the architecture is
/// unknown.
std::vector<sock_filter> worker_seccomp_program();

/// Starts the child described by `plan` (its fds and pointers must be set; the sync and error
/// pipes are created here). Throws genprm::Error naming the failed step; on success returns the
/// child's pid (host namespace). In dry-run mode the child exits 0 before execve, the call waits
/// for it and returns 0.
long start_child(ChildPlan plan);

}  // namespace genprm::exec_detail
