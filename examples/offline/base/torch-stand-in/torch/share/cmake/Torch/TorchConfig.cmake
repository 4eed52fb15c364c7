# Stand-in for PyTorch's TorchConfig.cmake: find_package(Torch REQUIRED) succeeds, with no libraries to link.
set(TORCH_FOUND TRUE)
set(TORCH_INCLUDE_DIRS "")
set(TORCH_LIBRARIES "")
get_filename_component(TORCH_INSTALL_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
