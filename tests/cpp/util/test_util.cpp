#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>
#include <deque>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "genprm/util/error.hpp"
#include "genprm/util/fs.hpp"
#include "genprm/util/in_flight.hpp"
#include "genprm/util/json.hpp"
#include "genprm/util/mmap.hpp"

namespace {
std::string temp_path(const char* name) { return std::string("/tmp/genprm_test_util_") + name; }
}  // namespace

TEST_CASE("GENPRM_CHECK formats the message and throws the right type") {
  CHECK_THROWS_WITH_AS(GENPRM_CHECK(1 == 2, "rows {} != vocab {}", 3, 4), "rows 3 != vocab 4",
                       genprm::Error);
  CHECK_THROWS_AS(GENPRM_CHECK_ARG(false, "bad {}", "x"), genprm::ValueError);
  CHECK_NOTHROW(GENPRM_CHECK(true, "never"));
}

TEST_CASE("read_json_file names the file on invalid JSON and on a missing file") {
  const std::string p = temp_path("bad.json");
  std::ofstream(p) << "{\"a\": 1,";
  try {
    genprm::read_json_file(p);
    FAIL("expected an error");
  } catch (const genprm::ValueError& e) {
    CHECK(std::string(e.what()).find(p) != std::string::npos);
    CHECK(std::string(e.what()).find("invalid JSON") != std::string::npos);
  }
  CHECK_THROWS_AS(genprm::read_json_file(temp_path("does_not_exist.json")), genprm::ValueError);
  std::remove(p.c_str());
}

TEST_CASE("json_get and json_get_or report missing keys and wrong types") {
  genprm::Json j = genprm::Json::parse(R"({"n": 3, "s": "x", "z": null})");
  CHECK(genprm::json_get<int>(j, "n", "cfg") == 3);
  CHECK(genprm::json_get_or<int>(j, "missing", 7, "cfg") == 7);
  CHECK(genprm::json_get_or<int>(j, "z", 9, "cfg") == 9);
  CHECK_THROWS_WITH_AS(genprm::json_get<int>(j, "s", "cfg.json"),
                       doctest::Contains("cfg.json: field 's' has the wrong type"), genprm::ValueError);
  CHECK_THROWS_WITH_AS(genprm::json_get<int>(j, "q", "cfg.json"),
                       "cfg.json: missing required field 'q'", genprm::ValueError);
}

TEST_CASE("MappedFile maps bytes and rejects missing files and directories") {
  const std::string p = temp_path("bytes.bin");
  std::ofstream(p, std::ios::binary) << "hello";
  genprm::MappedFile f(p);
  REQUIRE(f.size() == 5);
  CHECK(std::string(reinterpret_cast<const char*>(f.data()), f.size()) == "hello");
  genprm::MappedFile moved(std::move(f));
  CHECK(moved.size() == 5);
  CHECK(f.size() == 0);
  CHECK_THROWS_AS(genprm::MappedFile(temp_path("missing.bin")), genprm::ValueError);
  CHECK_THROWS_AS(genprm::MappedFile("/tmp"), genprm::ValueError);
  std::remove(p.c_str());
}

TEST_CASE("MappedFile is private copy-on-write: writes through the mapping never reach the file") {
  const std::string p = temp_path("cow.bin");
  std::ofstream(p, std::ios::binary) << "abc";
  {
    genprm::MappedFile f(p);
    const_cast<unsigned char*>(f.data())[0] = 'X';  // what an in-place op on a zero-copy tensor does
    CHECK(f.data()[0] == 'X');
  }
  CHECK(genprm::read_text_file(p) == "abc");
  std::remove(p.c_str());
}

TEST_CASE("parse_json turns number overflow into a ValueError naming the source") {
  CHECK_THROWS_WITH_AS(genprm::parse_json("[1e999]", "x.json"), doctest::Contains("x.json: invalid JSON"),
                       genprm::ValueError);
}

TEST_CASE("remove_tree removes a nested tree, not what its links point to; a missing path is fine") {
  const std::string root = temp_path("tree");
  const std::string outside = temp_path("tree_outside");
  genprm::remove_tree(root);
  genprm::remove_tree(outside);
  REQUIRE(::mkdir(outside.c_str(), 0700) == 0);
  std::ofstream(outside + "/keep.txt") << "kept";
  REQUIRE(::mkdir(root.c_str(), 0700) == 0);
  REQUIRE(::mkdir((root + "/a").c_str(), 0700) == 0);
  REQUIRE(::mkdir((root + "/a/b").c_str(), 0700) == 0);
  std::ofstream(root + "/a/b/x.bin") << "x";
  std::ofstream(root + "/top.txt") << "t";
  REQUIRE(::symlink(outside.c_str(), (root + "/a/link").c_str()) == 0);
  CHECK(genprm::remove_tree(root) == 6);  // root, a, a/b, x.bin, top.txt, link
  struct stat st {};
  CHECK(::lstat(root.c_str(), &st) != 0);
  CHECK(::lstat((outside + "/keep.txt").c_str(), &st) == 0);
  CHECK(genprm::remove_tree(root) == 0);
  CHECK(genprm::remove_tree(outside) == 2);
}

// --- util/in_flight.hpp ---------------------------------------------------------------------

namespace {
/// A driver over InFlight: item x "takes" x polls; "fail:<k>" fails its item, "release"
/// gives its slot back at start and finishes later. Records what happened, in order.
struct Jobs {
  struct Job {
    uint64_t id;
    std::string input;
    int left;
  };
  std::vector<std::string> log;
  std::deque<Job> running;
  size_t most_holding = 0;
  genprm::InFlight<std::string, std::string> flight;
  explicit Jobs(size_t cap, genprm::CallbackOrder order = genprm::CallbackOrder::AfterAdmitting)
      : flight(cap, [this](uint64_t id, std::string in) { start(id, std::move(in)); }, order) {}
  void start(uint64_t id, std::string in) {
    log.push_back("start " + in);
    most_holding = std::max(most_holding, flight.holding());
    if (in == "now") return flight.finish(id, "done now");  // finishes inside its own start
    if (in == "throw") throw std::runtime_error("cannot start");
    if (in.rfind("release", 0) == 0) flight.release(id);
    running.push_back({id, in, static_cast<int>(in.size() % 3) + 1});
  }
  bool poll() {
    if (running.empty()) return false;
    Job j = running.front();
    running.pop_front();
    if (--j.left > 0) {
      running.push_back(j);
      return true;
    }
    flight.finish(j.id, j.input.rfind("fail", 0) == 0 ? "error: " + j.input : "ok " + j.input);
    return true;
  }
  void submit(std::string in, std::function<void(std::string)> cb) {
    flight.submit(std::move(in), [this, cb](std::string r) {
      log.push_back("done " + r);
      cb(std::move(r));
    });
  }
  void run() {
    while (poll()) {
    }
  }
};
}  // namespace

TEST_CASE("InFlight: the cap is respected, items start in input order, results come back in input order") {
  for (size_t cap : {1, 2, 3, 10}) {
    CAPTURE(cap);
    Jobs jobs(cap);
    std::vector<std::string> in = {"a", "bb", "ccc", "dddd", "e", "ff", "ggg"};
    std::vector<size_t> seen;
    auto out = genprm::run_all_in_order<std::string>(
        in, [&](std::string x, std::function<void(std::string)> cb) { jobs.submit(std::move(x), std::move(cb)); },
        [&] { jobs.run(); }, [&](size_t i, const std::string&) { seen.push_back(i); }, "jobs");
    CHECK(jobs.most_holding == std::min(cap, in.size()));
    CHECK(jobs.flight.idle());
    std::vector<std::string> starts;
    for (const auto& l : jobs.log)
      if (l.rfind("start ", 0) == 0) starts.push_back(l.substr(6));
    CHECK(starts == in);  // admitted in input order
    REQUIRE(out.size() == in.size());
    for (size_t i = 0; i < in.size(); ++i) CHECK(out[i] == "ok " + in[i]);
    CHECK(seen.size() == in.size());
    if (cap == 1) CHECK(seen == std::vector<size_t>{0, 1, 2, 3, 4, 5, 6});
    if (cap == 10) CHECK(seen != std::vector<size_t>{0, 1, 2, 3, 4, 5, 6});  // completion order
  }
}

TEST_CASE("InFlight: a failing item reports its error, the others finish; callbacks run as each finishes") {
  Jobs jobs(2);
  std::vector<std::string> results;
  for (std::string x : {"a", "fail-b", "c", "now", "d"}) jobs.submit(x, [&](std::string r) { results.push_back(r); });
  CHECK(jobs.flight.active() == 2);
  CHECK(jobs.flight.queued() == 3);
  jobs.run();
  CHECK(jobs.flight.idle());
  CHECK(results.size() == 5);
  CHECK(std::count(results.begin(), results.end(), "error: fail-b") == 1);
  CHECK(std::count(results.begin(), results.end(), "ok a") == 1);
  CHECK(std::count(results.begin(), results.end(), "done now") == 1);  // finished inside its own start
  CHECK(std::count(results.begin(), results.end(), "ok d") == 1);
  // a start that throws propagates to the caller and frees its slot
  Jobs bad(1);
  CHECK_THROWS_WITH(bad.submit("throw", [](std::string) {}), "cannot start");
  CHECK(bad.flight.idle());
  bad.submit("a", [](std::string) {});
  CHECK(bad.flight.active() == 1);
}

TEST_CASE("InFlight: release gives the slot to the next item; callback order before or after admitting") {
  Jobs jobs(1);
  jobs.submit("release-x", [](std::string) {});
  jobs.submit("y", [](std::string) {});
  CHECK(jobs.flight.active() == 2);  // x released its slot at start: y runs with it
  CHECK(jobs.flight.holding() == 1);
  jobs.run();
  CHECK(jobs.flight.idle());

  for (auto order : {genprm::CallbackOrder::AfterAdmitting, genprm::CallbackOrder::BeforeAdmitting}) {
    Jobs j(1, order);
    j.submit("a", [](std::string) {});
    j.submit("b", [](std::string) {});
    j.run();
    const auto done_a = std::find(j.log.begin(), j.log.end(), "done ok a");
    const auto start_b = std::find(j.log.begin(), j.log.end(), "start b");
    REQUIRE(done_a != j.log.end());
    REQUIRE(start_b != j.log.end());
    CHECK((start_b < done_a) == (order == genprm::CallbackOrder::AfterAdmitting));
  }
}

TEST_CASE("outcomes_in_order / run_one: input order, the failure rethrown with its type") {
  auto run_async = [](std::vector<int> in, const std::function<void(genprm::Outcome<int>)>& each) {
    for (size_t k = in.size(); k-- > 0;) {  // completion order reversed
      genprm::Outcome<int> o;
      o.index = k;
      if (in[k] < 0) {
        o.exception = std::make_exception_ptr(genprm::ValueError("negative"));
        o.error = genprm::error_message(o.exception);
      } else {
        o.result = in[k] * 10;
      }
      each(std::move(o));
    }
  };
  std::vector<size_t> seen;
  auto out = genprm::outcomes_in_order<int>(std::vector<int>{1, -2, 3}, run_async,
                                            [&](const genprm::Outcome<int>& o) { seen.push_back(o.index); }, "t");
  CHECK(seen == std::vector<size_t>{2, 1, 0});
  REQUIRE(out.size() == 3);
  CHECK(out[0].result == 10);
  CHECK(out[2].result == 30);
  CHECK_FALSE(out[1].ok());
  CHECK(out[1].error == "negative");
  CHECK(genprm::run_one<int>(4, run_async, "t") == 40);
  CHECK_THROWS_AS(genprm::run_one<int>(-1, run_async, "t"), genprm::ValueError);
}
