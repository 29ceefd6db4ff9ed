# install.cmake - what `cmake --install` (and `make install`) puts where:
# the header, the static and shared library, the tool, the man pages, a
# pkg-config file and a CMake package (detheap::detheap for the shared
# library, detheap::detheap_static for the static one).
#
# Included at the end of the top-level CMakeLists.txt, after every target
# exists.  Everything is relocatable: the prefix is chosen at install time
# (`cmake --install build --prefix P`, DESTDIR honoured), so neither the
# .pc file nor the package files carry the configure-time prefix.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(DETHEAP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/detheap)

# Consumers see the short names detheap::detheap and detheap::detheap_static.
set_target_properties(detheap_shared PROPERTIES EXPORT_NAME detheap)
set_target_properties(detheap_static PROPERTIES EXPORT_NAME detheap_static)

install(TARGETS detheap_shared detheap_static
  EXPORT detheapTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    NAMELINK_COMPONENT Development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/detheap.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS detheap RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Man pages are installed when they have been written.
foreach(section 1 3)
  set(page ${PROJECT_SOURCE_DIR}/docs/detheap.${section})
  if(EXISTS ${page})
    install(FILES ${page}
      DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endif()
endforeach()

# pkg-config: the prefix is found from the .pc file's own place, so the file
# stays right whatever prefix or DESTDIR the install is given.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(DETHEAP_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(DETHEAP_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _dh_up "/_/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/_")
  string(REGEX REPLACE "/$" "" _dh_up "${_dh_up}")
  set(DETHEAP_PC_PREFIX "\${pcfiledir}/${_dh_up}")
  set(DETHEAP_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(DETHEAP_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(DETHEAP_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/detheap.pc.in
  ${PROJECT_BINARY_DIR}/detheap.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/detheap.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The CMake package.
install(EXPORT detheapTargets
  NAMESPACE detheap::
  FILE detheapTargets.cmake
  DESTINATION ${DETHEAP_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/detheapConfig.cmake.in
  ${PROJECT_BINARY_DIR}/detheapConfig.cmake
  INSTALL_DESTINATION ${DETHEAP_CMAKE_DIR})
# Within one major version the ABI only grows (docs/ABI.md).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/detheapConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/detheapConfig.cmake
  ${PROJECT_BINARY_DIR}/detheapConfigVersion.cmake
  DESTINATION ${DETHEAP_CMAKE_DIR})
