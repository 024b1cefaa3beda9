#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>
#include <string>

#include "genprm/util/error.hpp"
#include "genprm/util/fs.hpp"
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
