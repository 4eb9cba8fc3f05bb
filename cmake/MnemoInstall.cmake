# `cmake --install <build> --prefix P` installs the C++ SDK as a CMake
# package an outside project finds with find_package(mnemo CONFIG):
#   P/include/mnemo/*.h                      public headers (std, Abseil and
#                                            mnemo/ includes only)
#   P/lib/libmnemo_{client,proto,common,filter}.a  the SDK and the static
#                                            libraries it links
#   P/lib/cmake/mnemo/mnemoConfig.cmake, mnemoConfigVersion.cmake,
#   mnemoTargets*.cmake                      targets mnemo::client,
#                                            mnemo::proto, mnemo::common, mnemo::filter
# Generated protobuf headers are not installed: no public header includes
# one. tests/install checks all of this from an outside project.
include(CMakePackageConfigHelpers)

set(MNEMO_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/mnemo")

install(TARGETS mnemo_client mnemo_proto mnemo_common mnemo_filter
  EXPORT mnemoTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}")

# Public headers live in <folder>/include/mnemo/ (the SDK's in client/, the
# types it shares with the engine in common/).
foreach(dir client/include/mnemo common/include/mnemo)
  if(IS_DIRECTORY "${PROJECT_SOURCE_DIR}/${dir}")
    install(DIRECTORY "${PROJECT_SOURCE_DIR}/${dir}"
      DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
      FILES_MATCHING PATTERN "*.h")
  endif()
endforeach()

install(EXPORT mnemoTargets
  NAMESPACE mnemo::
  FILE mnemoTargets.cmake
  DESTINATION "${MNEMO_INSTALL_CMAKEDIR}")

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/mnemoConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/mnemoConfig.cmake"
  INSTALL_DESTINATION "${MNEMO_INSTALL_CMAKEDIR}")
# 0.x: a minor version may break the API.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/mnemoConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/mnemoConfig.cmake"
  "${PROJECT_BINARY_DIR}/mnemoConfigVersion.cmake"
  DESTINATION "${MNEMO_INSTALL_CMAKEDIR}")
