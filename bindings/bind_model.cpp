// model: the Qwen2 decoder (genprm.Model wraps it in python/genprm/model.py).
#include <cstring>
#include <memory>
#include <string>

#include "common.hpp"
#include "genprm/model/device.hpp"
#include "genprm/model/qwen2.hpp"

namespace genprm::bindings {

void bind_model(py::module_& m) {
  py::class_<Qwen2Model, std::shared_ptr<Qwen2Model>>(m, "Qwen2Model",
                                                       "Qwen2 decoder in libtorch (use genprm.Model)")
      .def_static(
          "load",
          [](const std::string& model_dir, const std::string& device, const std::string& dtype) {
            const at::Device dev = parse_device(device);
            const at::ScalarType dt = parse_dtype(dtype);
            py::gil_scoped_release release;
            return std::make_shared<Qwen2Model>(Qwen2Model::load(model_dir, dev, dt));
          },
          py::arg("model_dir"), py::arg("device"), py::arg("dtype"))
      .def(
          "logits",
          [](const Qwen2Model& self, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& ids) {
            GENPRM_CHECK_ARG(ids.ndim() == 1 && ids.shape(0) >= 1,
                             "Model.logits: ids must be a non-empty 1-D sequence of token ids (got {} dims, {} ids)",
                             ids.ndim(), ids.size());
            const int64_t n = ids.shape(0);
            at::Tensor t = at::empty({n}, at::kLong);
            std::memcpy(t.data_ptr<int64_t>(), ids.data(), static_cast<size_t>(n) * sizeof(int64_t));
            at::Tensor out;
            {
              py::gil_scoped_release release;
              out = self.forward_full(t).to(at::kCPU).contiguous();
            }
            py::array_t<float> arr({out.size(0), out.size(1)});
            std::memcpy(arr.mutable_data(), out.data_ptr<float>(), static_cast<size_t>(out.numel()) * sizeof(float));
            return arr;
          },
          py::arg("ids"), "ids [T] -> float32 logits [T, vocab] (causal, no cache)")
      .def_property_readonly("config", [](const Qwen2Model& self) { return self.config(); })
      .def_property_readonly("device", [](const Qwen2Model& self) { return self.device().str(); })
      .def_property_readonly("dtype", [](const Qwen2Model& self) { return dtype_name(self.dtype()); })
      .def_property_readonly("num_parameters", &Qwen2Model::num_parameters)
      .def("kv_bytes_per_block", &Qwen2Model::kv_bytes_per_block, py::arg("block_size"));
}

}  // namespace genprm::bindings
