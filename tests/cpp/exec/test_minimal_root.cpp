// exec: the minimal root (what a block's file system shows): the host-side layout (symlinks
// mirrored, nothing created inside a bind, "/" never bound), the per-child program, a failed
// step named in the error, and the pool with and without it.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "fast_options.hpp"
#include "genprm/exec/isolation.hpp"
#include "genprm/exec/sandbox.hpp"

using genprm::exec_detail::RootLayout;
using genprm::exec_detail::RootOp;
using genprm::exec_detail::RootProgram;

namespace {

struct TempTree {
  std::string dir;
  TempTree() {
    char tmpl[] = "/tmp/genprm-roottest-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    ::chmod(dir.c_str(), 0755);
  }
  ~TempTree() { CHECK(std::system(("rm -rf " + dir).c_str()) == 0); }
  void mkdir(const std::string& rel) { REQUIRE(::mkdir((dir + rel).c_str(), 0755) == 0); }
  void file(const std::string& rel) { std::ofstream(dir + rel) << "x"; }
  void link(const std::string& rel, const std::string& target) {
    REQUIRE(::symlink(target.c_str(), (dir + rel).c_str()) == 0);
  }
};

struct Op {
  int kind;
  std::string path, arg;
  bool operator==(const Op& o) const { return kind == o.kind && path == o.path && arg == o.arg; }
};

std::vector<Op> ops_of(const RootProgram& p) {
  std::vector<Op> out;
  for (int i = 0; i < p.size(); ++i) {
    const RootOp& o = p.ops()[i];
    out.push_back({o.kind, o.path, o.arg != nullptr ? o.arg : ""});
  }
  return out;
}

bool has(const std::vector<Op>& ops, const Op& op) {
  return std::find(ops.begin(), ops.end(), op) != ops.end();
}

}  // namespace

TEST_CASE("minimal root layout: symlinks mirrored, nested binds folded, '/' never bound") {
  TempTree t;
  const std::string& d = t.dir;
  t.mkdir("/real");
  t.mkdir("/real/bin");
  t.mkdir("/real/lib");
  t.file("/real/bin/py");
  t.file("/real/lib/x.so");
  t.link("/venv", "real");             // relative
  t.link("/abs", d + "/real/bin");     // absolute
  t.link("/loop", "loop");

  RootLayout layout;
  CHECK(layout.add(d + "/venv/bin/py", true));
  CHECK(layout.add(d + "/abs/py", true));
  CHECK(layout.add(d + "/real/lib", true));
  CHECK(layout.add(d + "/real/lib/x.so", true));  // inside a bound directory: folded
  CHECK(layout.add(d + "/real/bin/../lib", true));
  CHECK_FALSE(layout.add(d + "/missing", true));
  CHECK_FALSE(layout.add(d + "/loop", true));
  CHECK_FALSE(layout.add("/", true));  // the host's whole tree: never
  CHECK_FALSE(layout.add("relative/path", true));
  CHECK(layout.binds() == std::vector<std::string>{d + "/real/bin/py", d + "/real/lib"});

  RootProgram prog;
  const std::string root = "/R";
  prog.build(layout, root, d + "/work", "size=1m", true);
  const std::vector<Op> ops = ops_of(prog);
  REQUIRE(ops.size() > 4);
  CHECK(ops.front() == Op{RootOp::kTmpfs, root, "size=1m,nr_inodes=4096,mode=0755"});
  CHECK(ops.back() == Op{RootOp::kPivot, root, ""});
  CHECK(has(ops, Op{RootOp::kSymlink, root + d + "/venv", "real"}));
  CHECK(has(ops, Op{RootOp::kSymlink, root + d + "/abs", d + "/real/bin"}));
  CHECK(has(ops, Op{RootOp::kFile, root + d + "/real/bin/py", ""}));
  CHECK(has(ops, Op{RootOp::kBind, root + d + "/real/bin/py", d + "/real/bin/py"}));
  CHECK(has(ops, Op{RootOp::kBind, root + d + "/real/lib", d + "/real/lib"}));
  CHECK(has(ops, Op{RootOp::kProc, root + "/proc", ""}));
  // the work dir: a mount point in the skeleton (it need not exist on the host), then a tmpfs
  // mounted after everything else was made read-only
  auto at = [&](const Op& op) { return std::find(ops.begin(), ops.end(), op) - ops.begin(); };
  const auto ro = at(Op{RootOp::kReadonly, root, ""});
  const auto work = at(Op{RootOp::kTmpfs, root + d + "/work", "size=1m"});
  CHECK(ro < work);
  CHECK(work < static_cast<long>(ops.size()));
  for (const Op& op : ops) {
    // nothing is created inside a bound host directory (it would be written on the host)
    if (op.kind == RootOp::kMkdir || op.kind == RootOp::kFile || op.kind == RootOp::kSymlink) {
      CAPTURE(op.path);
      CHECK(op.path.rfind(root + d + "/real/lib/", 0) != 0);
      CHECK(static_cast<size_t>(at(op)) < static_cast<size_t>(ro));
    }
  }
  CHECK(prog.describe(0) == "mount tmpfs on /");
}

TEST_CASE("a failed step of the minimal root is named in the start-up error") {
  TempTree t;
  t.mkdir("/gone");
  RootLayout layout;
  REQUIRE(layout.add(t.dir + "/gone", true));
  REQUIRE(::rmdir((t.dir + "/gone").c_str()) == 0);  // disappears before the child binds it
  t.mkdir("/root");
  genprm::SandboxOptions o = fast_options(1);
  genprm::SandboxPool pool(o);  // only to learn which namespaces this machine permits
  if (!pool.isolation().minimal_root) {
    MESSAGE("minimal root not permitted here: " << pool.describe_isolation());
    return;
  }
  genprm::exec_detail::IsolationPlan iso = pool.isolation();
  iso.seccomp = false;
  RootProgram prog;
  const std::string w = t.dir + "/root";
  prog.build(layout, w, w, "size=1m,mode=0700", false);
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  genprm::exec_detail::ChildPlan c;
  c.iso = iso;
  c.iso.mount_proc = false;
  c.workdir = w.c_str();
  c.tmpfs_options = "size=1m";
  c.req_fd = p[0];
  c.resp_fd = p[1];
  c.devnull = devnull;
  c.root = &prog;
  c.dry_run = true;
  std::string error;
  try {
    genprm::exec_detail::start_child(c);
  } catch (const genprm::Error& e) {
    error = e.what();
  }
  ::close(p[0]);
  ::close(p[1]);
  ::close(devnull);
  CHECK(error.find("minimal root: bind " + t.dir + "/gone") != std::string::npos);
  CHECK(error.find("No such file or directory") != std::string::npos);
}

TEST_CASE("with the minimal root a block sees its interpreter but not the host's files") {
  const std::string project_file = std::string(GENPRM_SOURCE_DIR) + "/CMakeLists.txt";
  REQUIRE(::access(project_file.c_str(), R_OK) == 0);
  REQUIRE(::access("/etc/passwd", R_OK) == 0);
  const std::string probe =
      "import os, sys\nprint([os.path.exists(p) for p in (" +
      std::string("'") + project_file + "', '/etc/passwd', sys.executable)], os.getcwd() == "
      "os.environ['HOME'])";
  genprm::SandboxPool pool(fast_options(1));
  if (!pool.isolation().mount_ns) {
    MESSAGE("no mount namespace here: " << pool.describe_isolation());
    return;
  }
  CHECK(pool.isolation().minimal_root);
  CHECK(pool.describe_isolation().find("filesystem view: minimal root") != std::string::npos);
  auto s = pool.open_session();
  CHECK(pool.run(s, probe).output == "[False, False, True] True");
  // the fallback: the host's whole tree, read-only, and said so
  genprm::SandboxOptions o = fast_options(1);
  o.minimal_root = false;
  genprm::SandboxPool whole(o);
  CHECK_FALSE(whole.isolation().minimal_root);
  CHECK(whole.describe_isolation().find("the host's whole tree, read-only") != std::string::npos);
  auto s2 = whole.open_session();
  CHECK(whole.run(s2, probe).output == "[True, True, True] True");
}
