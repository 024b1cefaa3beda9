# Locates genprm's dependencies and defines two interface targets:
#   genprm_thirdparty: fmt (header-only), nlohmann-json, Eigen, utf8proc, doctest include paths
#   genprm_torch:      libtorch (from PyPI's torch: torch.utils.cmake_prefix_path)
# Used by the project's own build and by the installed genprmConfig.cmake.
# GENPRM_DEPS_DIR (optional) points to carried headers and libraries (GPU machine).
include_guard(GLOBAL)

set(_genprm_hints "")
if(GENPRM_DEPS_DIR)
  list(APPEND _genprm_hints ${GENPRM_DEPS_DIR}/include)
endif()

find_path(GENPRM_FMT_INCLUDE fmt/format.h HINTS ${_genprm_hints} REQUIRED)
find_path(GENPRM_JSON_INCLUDE nlohmann/json.hpp HINTS ${_genprm_hints} REQUIRED)
find_path(GENPRM_EIGEN_INCLUDE Eigen/Core HINTS ${_genprm_hints} PATH_SUFFIXES eigen3 REQUIRED)
find_path(GENPRM_UTF8PROC_INCLUDE utf8proc.h HINTS ${_genprm_hints} REQUIRED)
find_path(GENPRM_DOCTEST_INCLUDE doctest/doctest.h HINTS ${_genprm_hints})
set(_genprm_lib_hints "")
if(GENPRM_DEPS_DIR)
  list(APPEND _genprm_lib_hints ${GENPRM_DEPS_DIR}/lib)
endif()
find_library(GENPRM_UTF8PROC_LIBRARY NAMES utf8proc libutf8proc.so.2 HINTS ${_genprm_lib_hints} REQUIRED)

if(NOT TARGET genprm_thirdparty)
  add_library(genprm_thirdparty INTERFACE)
  set(_inc ${GENPRM_FMT_INCLUDE} ${GENPRM_JSON_INCLUDE} ${GENPRM_EIGEN_INCLUDE} ${GENPRM_UTF8PROC_INCLUDE})
  if(GENPRM_DOCTEST_INCLUDE)
    list(APPEND _inc ${GENPRM_DOCTEST_INCLUDE})
  endif()
  list(REMOVE_DUPLICATES _inc)
  target_include_directories(genprm_thirdparty SYSTEM INTERFACE ${_inc})
  find_package(Threads REQUIRED)
  target_link_libraries(genprm_thirdparty INTERFACE ${GENPRM_UTF8PROC_LIBRARY} Threads::Threads)
endif()

# libtorch. Python is needed to locate it when CMAKE_PREFIX_PATH does not already.
if(NOT Python_EXECUTABLE)
  find_package(Python COMPONENTS Interpreter)
endif()
if(NOT Torch_FOUND)
  if(Python_EXECUTABLE)
    execute_process(COMMAND ${Python_EXECUTABLE} -c "import torch, os; print(torch.utils.cmake_prefix_path); print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"
      OUTPUT_VARIABLE _torch_out OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _torch_rc)
    if(_torch_rc EQUAL 0)
      string(REPLACE "\n" ";" _torch_out "${_torch_out}")
      list(GET _torch_out 0 _torch_prefix)
      list(GET _torch_out 1 TORCH_LIB_DIR)
      list(APPEND CMAKE_PREFIX_PATH ${_torch_prefix})
    endif()
    execute_process(COMMAND ${Python_EXECUTABLE} -c "import pybind11; print(pybind11.get_cmake_dir())"
      OUTPUT_VARIABLE _pyb_dir OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _pyb_rc ERROR_QUIET)
    if(_pyb_rc EQUAL 0)
      list(APPEND CMAKE_PREFIX_PATH ${_pyb_dir})
    endif()
  endif()
  find_package(Torch REQUIRED)
endif()
if(NOT TORCH_LIB_DIR)
  get_filename_component(TORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)
endif()
if(NOT TARGET genprm_torch)
  add_library(genprm_torch INTERFACE)
  # Torch's flags carry the C++ ABI choice (-D_GLIBCXX_USE_CXX11_ABI=...).
  separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(genprm_torch INTERFACE ${_torch_flags})
  target_include_directories(genprm_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  target_link_libraries(genprm_torch INTERFACE ${TORCH_LIBRARIES})
  # PyPI's torch finds its CUDA libraries (nccl, cudnn, ...) in site-packages/nvidia/*/lib through
  # its RUNPATH. The linker must look there too, before an older copy in the CUDA toolkit
  # (e.g. /usr/local/cuda/lib/libnccl.so.2) that lacks symbols libtorch_cuda.so needs.
  file(GLOB _genprm_nv_libs LIST_DIRECTORIES true "${TORCH_LIB_DIR}/../../nvidia/*/lib")
  if(_genprm_nv_libs)
    string(JOIN ":" _genprm_nv_path ${_genprm_nv_libs})
    target_link_options(genprm_torch INTERFACE "LINKER:-rpath-link,${_genprm_nv_path}")
  endif()
endif()

# Names the installed genprm targets link to (see CMakeLists.txt).
if(GENPRM_PACKAGE_CONFIG AND NOT TARGET genprm::deps_torch)
  add_library(genprm::deps_thirdparty ALIAS genprm_thirdparty)
  add_library(genprm::deps_torch ALIAS genprm_torch)
endif()
