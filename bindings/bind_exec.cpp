// Python bindings of the exec layer: genprm._core.SandboxOptions / CodeResult / SandboxPool.
// The Pythonic wrapper is python/genprm/sandbox.py (genprm.Sandbox).
#include <memory>

#include "bound.hpp"
#include "common.hpp"
#include "genprm/exec/sandbox.hpp"

namespace genprm::bindings {

namespace {
// A Python callable kept by C++ threads: released with the GIL held, wherever the last copy dies.
std::shared_ptr<py::function> hold_callable(py::function f) {
  return std::shared_ptr<py::function>(new py::function(std::move(f)), [](py::function* p) {
    py::gil_scoped_acquire gil;
    delete p;
  });
}
}  // namespace

void bind_exec(py::module_& m) {
  bind_struct<SandboxOptions>(m, "SandboxOptions", "Limits and isolation switches of a SandboxPool (see docs/security.md).");
  bind_struct<CodeResult>(m, "CodeResult", "Outcome of one code block.");

  py::class_<SandboxPool>(m, "SandboxPool",
                          "Sandboxed Python workers serving many sessions concurrently.")
      .def(py::init<SandboxOptions>(), py::arg("options") = SandboxOptions{},
           py::call_guard<py::gil_scoped_release>())
      .def("open_session", &SandboxPool::open_session)
      .def("close_session", &SandboxPool::close_session, py::arg("session"),
           py::call_guard<py::gil_scoped_release>())
      .def(
          "submit",
          [](SandboxPool& pool, uint64_t session, std::string code, py::function on_done) {
            auto cb = hold_callable(std::move(on_done));
            pool.submit(session, std::move(code), [cb](CodeResult r) { (*cb)(std::move(r)); });
          },
          py::arg("session"), py::arg("code"), py::arg("on_done"),
          "Queues a block; on_done(CodeResult) runs inside a later poll() on the polling thread.")
      .def("poll", &SandboxPool::poll, "Runs callbacks of finished blocks; returns how many.")
      .def(
          "wait_and_poll",
          [](SandboxPool& pool, double timeout_s) {
            {
              py::gil_scoped_release release;
              pool.wait_for_result(timeout_s);
            }
            return pool.poll();
          },
          py::arg("timeout_s") = 1.0)
      .def("idle", &SandboxPool::idle)
      .def("shutdown", &SandboxPool::shutdown, py::call_guard<py::gil_scoped_release>(),
           "Kills running blocks and ends every worker; later calls raise RuntimeError.")
      .def("run", &SandboxPool::run, py::arg("session"), py::arg("code"),
           py::call_guard<py::gil_scoped_release>())
      .def("describe_isolation", &SandboxPool::describe_isolation)
      .def_property_readonly("python", &SandboxPool::python)
      .def("live_workers", &SandboxPool::live_workers)
      .def("session_worker_pid", &SandboxPool::session_worker_pid, py::arg("session"))
      .def_property_readonly("isolation", [](const SandboxPool& pool) {
        const auto& p = pool.isolation();
        py::dict d;
        d["user_ns"] = p.user_ns;
        d["mount_ns"] = p.mount_ns;
        d["mount_proc"] = p.mount_proc;
        d["minimal_root"] = p.minimal_root;
        d["pid_ns"] = p.pid_ns;
        d["net_ns"] = p.net_ns;
        d["ipc_ns"] = p.ipc_ns;
        d["drop_uid"] = p.drop_uid;
        d["seccomp"] = p.seccomp;
        d["uid"] = p.uid;
        return d;
      });

  m.def("last_python_block", &last_python_block, py::arg("text"),
        "The last ```python block of text as GenPRM extracts it, or None.");
}

}  // namespace genprm::bindings
