// exec: the worker's start-up check (issue 18): a worker whose host died before the
// parent-death signal was armed finds its reply pipe without a reader and exits before it
// says 'R'. Runs the worker source directly (src/exec/worker_source.hpp), without the pool.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../../../src/exec/worker_source.hpp"

namespace {
// Starts the worker source with `resp` as fd 4 and /dev/null as fd 3; returns its exit status
// (-1 if it was still running after 5 s, then killed).
int run_worker(int resp_write) {
  // above 4, so that the child's fd 3 and 4 set-up cannot close it first
  resp_write = ::fcntl(resp_write, F_DUPFD_CLOEXEC, 100);
  REQUIRE(resp_write >= 100);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 3, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, resp_write, 4);
  std::vector<std::string> args = {GENPRM_PYTHON, "-I", "-B", "-c",
                                   genprm::exec_detail::worker_python_source(), "5", "10",
                                   "1000", "", ""};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t pid = -1;
  REQUIRE(::posix_spawn(&pid, GENPRM_PYTHON, &fa, nullptr, argv.data(), envp) == 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(resp_write);
  int status = 0;
  for (int i = 0; i < 500; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    ::usleep(10000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}
}  // namespace

TEST_CASE("a worker whose host is already gone exits at start-up without a word") {
  ::signal(SIGPIPE, SIG_IGN);  // the control case below must not end this test on EPIPE
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  ::close(p[0]);  // nobody will read: the host is "gone"
  const int status = run_worker(p[1]);
  ::close(p[1]);
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // control: with a reader the same worker speaks ('R' frame) and ends at EOF on its requests
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  const int status2 = run_worker(p[1]);
  ::close(p[1]);
  char hdr[13] = {};
  CHECK(::read(p[0], hdr, sizeof hdr) == sizeof hdr);
  CHECK(hdr[12] == 'R');
  ::close(p[0]);
  CHECK(status2 != -1);
}
