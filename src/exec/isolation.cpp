// The code of exec/isolation.hpp: the seccomp program, the child between clone and execve, and
// start_child. See the header for the mechanisms and why the child may not allocate.
#include "genprm/exec/isolation.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <thread>

#include "genprm/util/error.hpp"

namespace genprm::exec_detail {
namespace {

// Steps reported by a failing child (index into step_name()).
enum ChildStep : int {
  kStepSync = 1, kStepSetsid, kStepMountPrivate, kStepMountReadonly, kStepMountTmpfs,
  kStepMountProc, kStepSetgroups, kStepSetgid, kStepSetuid, kStepNoNewPrivs, kStepRlimit,
  kStepSeccomp, kStepFds, kStepChdir, kStepParent, kStepExec,
  kStepRoot = 1000  // + index of the failed RootOp
};

const char* step_name(int step) {
  static const char* names[] = {"?", "wait for uid map", "setsid", "make mounts private",
                                "make mounts read-only", "mount tmpfs workdir", "mount /proc",
                                "setgroups", "setgid", "setuid", "no_new_privs", "setrlimit",
                                "seccomp", "set up file descriptors", "chdir to workdir",
                                "parent-death signal", "execve"};
  return (step > 0 && step <= kStepExec) ? names[step] : names[0];
}

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct MountAttr {  // struct mount_attr of <linux/mount.h> (not included: it clashes with glibc)
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};
constexpr uint64_t kMountAttrReadonly = 0x1, kMountAttrNosuid = 0x2, kMountAttrNodev = 0x4;

}  // namespace

// ---- seccomp deny-list ------------------------------------------------------------------------
#if defined(__x86_64__)
#define GENPRM_SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define GENPRM_SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

namespace {

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#define SYS_io_uring_enter 426
#define SYS_io_uring_register 427
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

constexpr uint32_t ret_errno(int e) { return SECCOMP_RET_ERRNO | (e & SECCOMP_RET_DATA); }

/// A BPF program under construction: architecture check, then rules on the syscall number.
struct Bpf {
  std::vector<sock_filter> p;
  void stmt(uint16_t code, uint32_t k) { p.push_back(BPF_STMT(code, k)); }
  void jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
    p.push_back(BPF_JUMP(code, k, jt, jf));
  }
  void load_nr() { stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)); }
  // The low 32 bits of argument i (little-endian).
  void load_arg(int i) {
    stmt(BPF_LD | BPF_W | BPF_ABS,
         static_cast<uint32_t>(offsetof(seccomp_data, args) + 8 * static_cast<size_t>(i)));
  }
  void start() {
#ifdef GENPRM_SECCOMP_ARCH
    stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
    jump(BPF_JMP | BPF_JEQ | BPF_K, GENPRM_SECCOMP_ARCH, 1, 0);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    load_nr();
#if defined(__x86_64__)
    jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);  // x32 ABI numbers bypass the list
    stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
#endif
  }
  // if nr == `nr`: return `ret` (the accumulator holds nr)
  void deny(long nr, uint32_t ret) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, ret);
  }
  // clone(flags, ...) returns `ret` when a flag of `bad` is set (bad != 0) or when `needed` is
  // not set (needed != 0), else is allowed; flags is args[0] on x86_64 and aarch64. Other
  // syscalls pass with the accumulator still holding nr.
  void clone_rule(uint32_t bad, uint32_t needed, uint32_t ret) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4);
    load_arg(0);
    if (bad != 0) jump(BPF_JMP | BPF_JSET | BPF_K, bad, 1, 0);
    else jump(BPF_JMP | BPF_JSET | BPF_K, needed, 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    stmt(BPF_RET | BPF_K, ret);
  }
};

}  // namespace

std::vector<sock_filter> seccomp_program() {
#ifndef GENPRM_SECCOMP_ARCH
  return {};
#else
  Bpf b;
  b.start();
  const long denied[] = {
    SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_mount, SYS_umount2,
    SYS_pivot_root, SYS_chroot, SYS_setns, SYS_unshare, SYS_bpf, SYS_perf_event_open,
    SYS_keyctl, SYS_add_key, SYS_request_key, SYS_userfaultfd, SYS_kexec_load, SYS_init_module,
    SYS_finit_module, SYS_delete_module, SYS_reboot, SYS_swapon, SYS_swapoff,
    SYS_open_by_handle_at, SYS_name_to_handle_at, SYS_quotactl, SYS_acct, SYS_settimeofday,
    SYS_clock_settime, SYS_adjtimex, SYS_sethostname, SYS_setdomainname, SYS_mount_setattr,
    SYS_fsopen, SYS_fsmount, SYS_fsconfig, SYS_fspick, SYS_move_mount, SYS_open_tree,
    // io_uring (its socket and file operations bypass every rule here), fd theft
    SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register, SYS_pidfd_getfd,
    // host IPC that no mount rule covers: SysV queues, semaphores, shared memory, POSIX queues
    SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl, SYS_semget, SYS_semop, SYS_semctl,
    SYS_semtimedop, SYS_shmget, SYS_shmat, SYS_shmdt, SYS_shmctl, SYS_mq_open, SYS_mq_unlink,
    SYS_mq_timedsend, SYS_mq_timedreceive, SYS_mq_notify, SYS_mq_getsetattr,
  };
  for (long nr : denied) b.deny(nr, ret_errno(EPERM));
  // clone3's flags live in memory BPF cannot read; glibc falls back to clone
  b.deny(SYS_clone3, ret_errno(ENOSYS));
  // No socket() at all: unix sockets reach host services by path even through read-only
  // mounts, inet ones the network. socketpair (asyncio's self-pipe) connects only to itself.
  b.deny(SYS_socket, ret_errno(EACCES));
  // File locks would block the host's locks on any file the worker can open for reading.
  b.deny(SYS_flock, ret_errno(ENOLCK));
  const uint32_t lock_cmds[] = {F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW, F_SETLEASE};
  b.jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_fcntl, 0, 2 + 2 * std::size(lock_cmds));
  b.load_arg(1);
  for (uint32_t cmd : lock_cmds) b.deny(cmd, ret_errno(ENOLCK));
  b.stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  // clone(flags, ...): no new namespaces.
  b.clone_rule(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                   CLONE_NEWUTS | CLONE_NEWCGROUP,
               0, ret_errno(EPERM));
  b.stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  return b.p;
#endif
}

std::vector<sock_filter> worker_seccomp_program() {
#ifndef GENPRM_SECCOMP_ARCH
  return {};
#else
  Bpf b;
  b.start();
  b.deny(SYS_execve, ret_errno(EPERM));
  b.deny(SYS_execveat, ret_errno(EPERM));
#ifdef SYS_fork
  b.deny(SYS_fork, ret_errno(EPERM));
#endif
#ifdef SYS_vfork
  b.deny(SYS_vfork, ret_errno(EPERM));
#endif
  b.deny(SYS_clone3, ret_errno(ENOSYS));
  // Memory outside the address space: a memfd holds up to RLIMIT_FSIZE of shared memory per
  // descriptor without being mapped (max_open_files of them).
  b.deny(SYS_memfd_create, ret_errno(EPERM));
  b.deny(SYS_memfd_secret, ret_errno(EPERM));
  // threads only: clone needs CLONE_THREAD (which the kernel accepts only with CLONE_VM, so
  // every thread shares the one address space and its RLIMIT_AS)
  b.clone_rule(0, CLONE_THREAD, ret_errno(EPERM));
  b.stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  return b.p;
#endif
}

// ---- the child --------------------------------------------------------------------------------

namespace {

[[noreturn]] void child_fail(const ChildPlan& c, int step) {
  int msg[2] = {step, errno};
  ssize_t n = ::write(c.err_fd, msg, sizeof msg);
  (void)n;
  ::_exit(127);
}

// Runs the RootOps: a tmpfs root, its skeleton, read-only binds, pivot_root. Plain system calls
// on strings the host prepared.
void build_root(const ChildPlan& c) {
  ::umask(022);  // the host's umask could make the skeleton untraversable for the sandbox uid
  if (c.iso.user_ns && c.iso.drop_uid) {
    // Root host, user namespace: this child's uid (host 0) is not mapped, and a tmpfs of this
    // namespace refuses to create files for an unmapped fsuid (EOVERFLOW). Create as the
    // sandbox uid; capabilities in the namespace are kept (they do not depend on the fsuid).
    ::syscall(SYS_setfsgid, c.iso.gid);
    ::syscall(SYS_setfsuid, c.iso.uid);
  }
  const RootOp* ops = c.root->ops();
  for (int i = 0; i < c.root->size(); ++i) {
    const RootOp& op = ops[i];
    long r = 0;
    switch (op.kind) {
      case RootOp::kTmpfs:
        r = ::mount("tmpfs", op.path, "tmpfs", MS_NOSUID | MS_NODEV, op.arg);
        break;
      case RootOp::kMkdir:
        r = ::mkdir(op.path, 0755);
        break;
      case RootOp::kSymlink:
        r = ::symlink(op.arg, op.path);
        break;
      case RootOp::kFile: {
        int fd = ::open(op.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        r = fd < 0 ? -1 : ::close(fd);
        break;
      }
      case RootOp::kBind:
        r = ::mount(op.arg, op.path, nullptr, MS_BIND | MS_REC, nullptr);
        break;
      case RootOp::kProc:
        // before the pivot: a new proc is allowed only while a full one is visible
        r = ::mount("proc", op.path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
        break;
      case RootOp::kReadonly: {
        MountAttr attr{kMountAttrReadonly | kMountAttrNosuid | kMountAttrNodev, 0, 0, 0};
        r = ::syscall(SYS_mount_setattr, AT_FDCWD, op.path, AT_RECURSIVE, &attr, sizeof attr);
        break;
      }
      case RootOp::kReadonlyDev: {
        MountAttr attr{kMountAttrReadonly | kMountAttrNosuid, 0, 0, 0};
        r = ::syscall(SYS_mount_setattr, AT_FDCWD, op.path, 0, &attr, sizeof attr);
        break;
      }
      case RootOp::kPivot:
        // pivot_root(".", "."): the old root ends up stacked on the new one and is detached
        // whole (its locked submounts with it); nothing of the host's tree stays reachable.
        r = ::chdir(op.path);
        if (r == 0) r = ::syscall(SYS_pivot_root, ".", ".");
        if (r == 0) r = ::umount2(".", MNT_DETACH);
        if (r == 0) r = ::chdir("/");
        break;
      default:
        errno = EINVAL;
        r = -1;
    }
    if (r != 0) child_fail(c, kStepRoot + i);
  }
}

[[noreturn]] void child_main(const ChildPlan& c) {
  // The host's signal handlers live in memory this child shares until execve: none may run
  // here. Signals arrive blocked (start_child); handled ones go back to the default action,
  // and the mask is cleared right before execve.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction old {};
    if (sig == SIGKILL || sig == SIGSTOP || ::sigaction(sig, nullptr, &old) != 0) continue;
    if (old.sa_handler != SIG_IGN && old.sa_handler != SIG_DFL) ::sigaction(sig, &dfl, nullptr);
  }
  if (c.sync_fd >= 0) {
    char b = 0;
    if (::read(c.sync_fd, &b, 1) != 1) child_fail(c, kStepSync);
  }
  if (::setsid() < 0) child_fail(c, kStepSetsid);
  if (c.iso.mount_ns && c.iso.minimal_root && c.root != nullptr) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      child_fail(c, kStepMountPrivate);
    build_root(c);
  } else if (c.iso.mount_ns) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      child_fail(c, kStepMountPrivate);
    MountAttr attr{kMountAttrReadonly | kMountAttrNosuid | kMountAttrNodev, 0, 0, 0};
    if (::syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof attr) != 0)
      child_fail(c, kStepMountReadonly);
    if (::mount("tmpfs", c.workdir, "tmpfs", MS_NOSUID | MS_NODEV, c.tmpfs_options) != 0)
      child_fail(c, kStepMountTmpfs);
    if (c.iso.mount_proc &&
        ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      child_fail(c, kStepMountProc);
  }
  if (c.iso.drop_uid) {
    // Raw system calls: glibc's set*id wrappers signal every thread the host had (setxid
    // broadcast) and would wait forever for threads that do not exist in this child.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) child_fail(c, kStepSetgroups);
    if (::syscall(SYS_setresgid, c.iso.gid, c.iso.gid, c.iso.gid) != 0) child_fail(c, kStepSetgid);
    if (::syscall(SYS_setresuid, c.iso.uid, c.iso.uid, c.iso.uid) != 0) child_fail(c, kStepSetuid);
  }
  // Dies with the host thread that cloned it. Set after the uid drop (a credential change clears
  // it); kept across execve. The host may have died before this line: outside a PID namespace
  // the parent is then no longer the host; inside one (getppid() is 0 there) the worker checks
  // at start-up that its reply pipe still has a reader.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) child_fail(c, kStepParent);
  if (!c.iso.pid_ns && c.host_pid > 0 && ::getppid() != static_cast<pid_t>(c.host_pid))
    ::_exit(126);
  // fds: move the five we keep above 100 first, so dup2 onto 0..4 cannot clobber one of them.
  const int err_fd = ::fcntl(c.err_fd, F_DUPFD_CLOEXEC, 100);
  if (err_fd < 0) child_fail(c, kStepFds);
  ChildPlan c2 = c;  // a struct copy, no allocation
  c2.err_fd = err_fd;
  int req = ::fcntl(c.req_fd, F_DUPFD, 100), resp = ::fcntl(c.resp_fd, F_DUPFD, 100);
  int nul = ::fcntl(c.devnull, F_DUPFD, 100);
  if (req < 0 || resp < 0 || nul < 0) child_fail(c2, kStepFds);
  if (::dup2(nul, 0) < 0 || ::dup2(nul, 1) < 0 || ::dup2(nul, 2) < 0 || ::dup2(req, 3) < 0 ||
      ::dup2(resp, 4) < 0)
    child_fail(c2, kStepFds);
  // Everything else closes at exec (the error pipe among them, which tells the host exec worked).
  if (::syscall(SYS_close_range, 5, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 5; fd < 4096; ++fd)
      if (fd != err_fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(c2, kStepNoNewPrivs);
  auto limit = [&](int resource, rlim_t soft, rlim_t hard) {
    rlimit r{soft, hard};
    if (::setrlimit(resource, &r) != 0) child_fail(c2, kStepRlimit);
  };
  const rlim_t cpu = static_cast<rlim_t>(c.lim.session_cpu_s + 0.999);
  limit(RLIMIT_CPU, cpu, cpu);
  limit(RLIMIT_AS, c.lim.memory_bytes, c.lim.memory_bytes);
  limit(RLIMIT_FSIZE, c.lim.file_size_bytes, c.lim.file_size_bytes);
  limit(RLIMIT_NPROC, static_cast<rlim_t>(c.lim.max_processes),
        static_cast<rlim_t>(c.lim.max_processes));
  limit(RLIMIT_NOFILE, static_cast<rlim_t>(c.lim.max_open_files),
        static_cast<rlim_t>(c.lim.max_open_files));
  limit(RLIMIT_CORE, 0, 0);
  limit(RLIMIT_MEMLOCK, 0, 0);
  limit(RLIMIT_MSGQUEUE, 0, 0);
  if (c.iso.seccomp && c.filter_len > 0) {
    sock_fprog prog{c.filter_len, const_cast<sock_filter*>(c.filter)};
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) child_fail(c2, kStepSeccomp);
  }
  if (::chdir(c.workdir) != 0) child_fail(c2, kStepChdir);
  if (c.dry_run) ::_exit(0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(c.exe, c.argv, c.envp);
  child_fail(c2, kStepExec);
}

void write_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  GENPRM_CHECK(fd >= 0, "sandbox: cannot open {}: {}", path, std::strerror(errno));
  ssize_t n = ::write(fd, text.data(), text.size());
  int e = errno;
  ::close(fd);
  GENPRM_CHECK(n == static_cast<ssize_t>(text.size()), "sandbox: cannot write {}: {}", path,
               std::strerror(e));
}

int child_entry(void* plan) { child_main(*static_cast<const ChildPlan*>(plan)); }

void write_id_maps(long pid, const IsolationPlan& iso) {
  const std::string base = fmt::format("/proc/{}/", pid);
  if (geteuid() == 0) {
    write_file(base + "uid_map", fmt::format("{0} {0} 1\n", iso.uid));
    write_file(base + "gid_map", fmt::format("{0} {0} 1\n", iso.gid));
  } else {
    write_file(base + "setgroups", "deny");
    write_file(base + "uid_map", fmt::format("{0} {0} 1\n", geteuid()));
    write_file(base + "gid_map", fmt::format("{0} {0} 1\n", getegid()));
  }
}

}  // namespace

// ---- the minimal root: layout (host) and program (per child) ------------------------------------

bool RootLayout::add(const std::string& path, bool bind) {
  if (path.empty() || path[0] != '/') return false;
  return add_resolved(path, bind, 0);
}

bool RootLayout::add_resolved(std::string path, bool bind, int depth) {
  if (depth > 40) return false;  // a symlink loop (the kernel's ELOOP limit)
  std::vector<std::string> parts;
  for (size_t start = 0; start < path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string c = path.substr(start, end - start);
    if (!c.empty() && c != ".") parts.push_back(std::move(c));
    start = end + 1;
  }
  std::string cur;  // the resolved prefix, free of symlinks ("" is "/")
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "..") {
      cur = cur.substr(0, cur.empty() ? 0 : cur.rfind('/'));
      continue;
    }
    const std::string next = cur + "/" + parts[i];
    const bool last = i + 1 == parts.size();
    struct stat st {};
    if (::lstat(next.c_str(), &st) != 0) return false;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(next.c_str(), buf, sizeof buf);
      if (n <= 0 || n >= static_cast<ssize_t>(sizeof buf)) return false;
      std::string text(buf, static_cast<size_t>(n));
      nodes_[next] = Node{RootOp::kSymlink, text};
      std::string rest;
      for (size_t k = i + 1; k < parts.size(); ++k) rest += "/" + parts[k];
      return add_resolved((text[0] == '/' ? text : cur + "/" + text) + rest, bind, depth + 1);
    }
    if (S_ISDIR(st.st_mode)) {
      nodes_.emplace(next, Node{RootOp::kMkdir, ""});
      cur = next;
      continue;
    }
    if (!last || !bind) return false;  // a file inside a path, or as a directory mount point
    nodes_.emplace(next, Node{RootOp::kFile, ""});
    cur = next;
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) devices_.insert(next);
  }
  if (cur.empty()) return !bind;  // "/" itself is never bound: that would be the host's tree
  if (bind) binds_.insert(cur);
  return true;
}

namespace {
bool strictly_under(const std::string& p, const std::string& dir) {
  return p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/';
}
}  // namespace

std::vector<std::string> RootLayout::binds() const {
  std::vector<std::string> out;
  for (const auto& b : binds_) {
    bool inside = false;
    for (const auto& o : binds_) inside = inside || strictly_under(b, o);
    if (!inside) out.push_back(b);
  }
  return out;
}

void RootProgram::build(const RootLayout& base, const std::string& root,
                        const std::string& workdir, const std::string& workdir_tmpfs_options,
                        bool mount_proc) {
  RootLayout layout = base;
  layout.add(workdir, false);
  if (mount_proc) layout.add("/proc", false);
  strings_.clear();
  ops_.clear();
  host_paths_.clear();
  auto op = [&](int kind, const std::string& host_path, const std::string& arg) {
    const char* h = keep(host_path);
    const char* path = keep(root + (host_path == "/" ? "" : host_path));
    ops_.push_back(RootOp{kind, path, kind == RootOp::kSymlink || kind == RootOp::kTmpfs ||
                                              kind == RootOp::kBind
                                          ? keep(arg)
                                          : nullptr});
    host_paths_.push_back(h);
  };
  const std::vector<std::string> binds = layout.binds();
  auto under_bind = [&](const std::string& p) {
    for (const auto& b : binds)
      if (strictly_under(p, b)) return true;
    return false;
  };
  // a small root: it holds only directories, symlinks and empty mount points
  op(RootOp::kTmpfs, "/", "size=1m,nr_inodes=4096,mode=0755");
  for (const auto& [path, node] : layout.nodes_) {
    // what lies inside a bound directory is the host's, reached through the bind; creating it
    // would write into the host's directory
    if (!under_bind(path)) op(node.kind, path, node.arg);
  }
  for (const auto& b : binds)
    if (!layout.is_device(b)) op(RootOp::kBind, b, b);
  if (mount_proc) op(RootOp::kProc, "/proc", "");
  op(RootOp::kReadonly, "/", "");
  for (const auto& b : binds) {
    if (!layout.is_device(b)) continue;
    op(RootOp::kBind, b, b);
    op(RootOp::kReadonlyDev, b, "");
  }
  op(RootOp::kTmpfs, workdir, workdir_tmpfs_options);
  op(RootOp::kPivot, "/", "");
}

std::string RootProgram::describe(int i) const {
  static const char* names[] = {"mount tmpfs on", "mkdir", "symlink", "create",
                                "bind",           "mount proc on", "make read-only",
                                "make read-only", "pivot_root into"};
  if (i < 0 || i >= size()) return "?";
  const int k = ops_[static_cast<size_t>(i)].kind;
  return fmt::format("{} {}", (k >= 0 && k <= RootOp::kPivot) ? names[k] : "?",
                     host_paths_[static_cast<size_t>(i)]);
}

long start_child(ChildPlan plan) {
  int err[2], sync[2] = {-1, -1};
  GENPRM_CHECK(::pipe2(err, O_CLOEXEC) == 0, "sandbox: pipe: {}", std::strerror(errno));
  if (plan.iso.user_ns) {
    GENPRM_CHECK(::pipe2(sync, O_CLOEXEC) == 0, "sandbox: pipe: {}", std::strerror(errno));
  }
  plan.err_fd = err[1];
  plan.sync_fd = sync[0];
  // The child shares the host's memory until execve (CLONE_VM | CLONE_VFORK, like posix_spawn):
  // no copy of the host's page tables, which for a host holding gigabytes (model weights) cost
  // hundreds of milliseconds per worker and stalled the host's threads. It runs on its own stack
  // and only reads `plan`; the calling thread sleeps until the child has called execve or exited.
  const size_t stack_size = 256 * 1024;
  void* stack = ::mmap(nullptr, stack_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    ::close(err[0]); ::close(err[1]);
    if (sync[0] >= 0) { ::close(sync[0]); ::close(sync[1]); }
    throw Error(fmt::format("sandbox: mmap of the child stack: {}", std::strerror(errno)));
  }
  // With a user namespace the id maps must be written from outside while the child waits and
  // this thread sleeps in clone: a helper thread does it once the kernel has stored the pid.
  std::atomic<pid_t> child_pid{0};
  std::atomic<bool> give_up{false};
  std::string map_error;
  std::thread helper;
  if (plan.iso.user_ns) {
    helper = std::thread([&] {
      pid_t p;
      while ((p = child_pid.load()) == 0) {
        if (give_up.load()) return;
        std::this_thread::yield();
      }
      try {
        write_id_maps(p, plan.iso);
        char b = 1;
        if (::write(sync[1], &b, 1) != 1) map_error = "sandbox: sync write failed";
      } catch (const Error& e) {
        map_error = e.what();
      }
      ::close(sync[1]);  // on failure the child reads EOF and reports the sync step
      sync[1] = -1;
    });
  }
  static_assert(sizeof(std::atomic<pid_t>) == sizeof(pid_t), "CLONE_PARENT_SETTID target");
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  long pid = ::clone(child_entry, static_cast<char*>(stack) + stack_size,
                     plan.iso.clone_flags() | CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID |
                         SIGCHLD,
                     &plan, reinterpret_cast<pid_t*>(&child_pid));
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) give_up = true;
  if (helper.joinable()) helper.join();
  ::munmap(stack, stack_size);
  ::close(err[1]);
  if (sync[0] >= 0) ::close(sync[0]);
  auto cleanup = [&] {
    ::close(err[0]);
    if (sync[1] >= 0) ::close(sync[1]);
  };
  if (pid < 0) {
    cleanup();
    throw Error(fmt::format("sandbox: clone(flags=0x{:x}): {}", plan.iso.clone_flags(),
                            std::strerror(clone_errno)));
  }
  int msg[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(err[0], msg, sizeof msg);
  } while (n < 0 && errno == EINTR);
  cleanup();
  if (!map_error.empty() || n > 0 || plan.dry_run) {
    int status = 0;
    while (::waitpid(static_cast<pid_t>(pid), &status, __WALL) < 0 && errno == EINTR) {
    }
    GENPRM_CHECK(map_error.empty(), "{}", map_error);
    GENPRM_CHECK(n <= 0, "sandbox: worker start-up failed at step '{}': {}",
                 (msg[0] >= kStepRoot && plan.root != nullptr)
                     ? "minimal root: " + plan.root->describe(msg[0] - kStepRoot)
                     : std::string(step_name(msg[0])),
                 std::strerror(msg[1]));
    GENPRM_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 "sandbox: probe child ended with status {}", status);
    return 0;
  }
  return pid;
}

}  // namespace genprm::exec_detail
