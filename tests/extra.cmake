# Database tests against a throwaway PostgreSQL server (tests/db/with-postgres.sh).
if(TARGET test_db)
  add_test(NAME unit.test_db_pg
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/db/with-postgres.sh $<TARGET_FILE:test_db>)
  set_tests_properties(unit.test_db_pg PROPERTIES TIMEOUT 180 LABELS "unit;pg")
endif()
# Jobs tests against a throwaway PostgreSQL server.
if(TARGET test_jobs)
  add_test(NAME unit.test_jobs_pg
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/db/with-postgres.sh $<TARGET_FILE:test_jobs>)
  set_tests_properties(unit.test_jobs_pg PROPERTIES TIMEOUT 180 LABELS "unit;pg")
endif()
# TypeScript client: generator driver (until the donkey CLI calls it) and the
# end-to-end test (npm ci, tsc --strict, node --test against conformance).
if(EXISTS ${CMAKE_SOURCE_DIR}/cli/gen_client.c)
  include(${CMAKE_SOURCE_DIR}/client/embed.cmake)
  add_executable(dk_gen_client_test ${CMAKE_CURRENT_SOURCE_DIR}/client/gen_main.c
                 ${CMAKE_SOURCE_DIR}/cli/gen_client.c ${DK_CLI_BASE_SOURCES})
  target_include_directories(dk_gen_client_test PRIVATE ${CMAKE_SOURCE_DIR}/cli
                             ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
  target_link_libraries(dk_gen_client_test PRIVATE PkgConfig::JANSSON)
  dk_client_runtime_embed(dk_gen_client_test)
  add_test(NAME client.ts
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/client/run.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(client.ts PROPERTIES TIMEOUT 300 LABELS client)
endif()

# Plugin manager / migration tests against PostgreSQL as well.
if(TARGET test_plugin)
  add_test(NAME unit.test_plugin_pg
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/db/with-postgres.sh $<TARGET_FILE:test_plugin>)
  set_tests_properties(unit.test_plugin_pg PROPERTIES TIMEOUT 180 LABELS "unit;pg")
endif()
add_test(NAME bench.smoke COMMAND bash ${CMAKE_SOURCE_DIR}/bench/run --smoke --build-dir ${CMAKE_BINARY_DIR})
set_tests_properties(bench.smoke PROPERTIES LABELS "bench;nosan" TIMEOUT 300)
# Browser test of the board example (Debian chromium + playwright-core, tests/browser/run.sh).
add_test(NAME browser.board COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/browser/run.sh ${CMAKE_BINARY_DIR})
set_tests_properties(browser.board PROPERTIES TIMEOUT 300 LABELS "browser;nosan")
# Browser test of the operations page (issue 17; screenshots in <build>/browser-artifacts).
add_test(NAME browser.admin COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/browser/admin.sh ${CMAKE_BINARY_DIR})
set_tests_properties(browser.admin PROPERTIES TIMEOUT 300 LABELS "browser;nosan")
# Both run `npm ci` in tests/browser: never at the same time (ctest -j2 raced
# them, one deleting node_modules under the other).
set_tests_properties(browser.board browser.admin PROPERTIES RESOURCE_LOCK tests_browser_node_modules)
# Fuzzing (fuzz/run.sh): builds the libFuzzer targets with clang in its own
# directory and runs each for FUZZ_SECONDS (20 s in CI; long form:
# FUZZ_SECONDS=3600 fuzz/run.sh). Labels: fuzz;nosan.
add_test(NAME fuzz.all COMMAND bash ${CMAKE_SOURCE_DIR}/fuzz/run.sh)
set_tests_properties(fuzz.all PROPERTIES LABELS "fuzz;nosan" TIMEOUT 900
  ENVIRONMENT "FUZZ_SECONDS=20;FUZZ_BUILD_DIR=${CMAKE_BINARY_DIR}/fuzz-build")
# Scale-out: three conformance instances over one PostgreSQL and one Redis
# (tests/cluster/run.sh starts both as throwaway servers).
add_test(NAME cluster COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cluster/run.sh ${CMAKE_BINARY_DIR})
set_tests_properties(cluster PROPERTIES LABELS "cluster;nosan" TIMEOUT 600
  ENVIRONMENT "DK_TEST_PG_PORT=54400")
# The HTTP suites that use the database, on PostgreSQL (dk.py adds --db from DK_TEST_DB_URL).
add_test(NAME http.pg
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/db/with-postgres.sh bash -c
                 "DK_TEST_DB_URL=$DK_TEST_PG_URL exec ${Python3_EXECUTABLE} -m unittest -v test_plugins test_jobs test_board"
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/http)
set_tests_properties(http.pg PROPERTIES TIMEOUT 600 LABELS "http;pg"
  ENVIRONMENT "DK_BUILD_DIR=${CMAKE_BINARY_DIR};DK_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
# Soak, short CI form (bench/soak/soak.py; the long form is 5 minutes:
# bench/soak/soak.py --build-dir build). Labels: soak;nosan.
add_test(NAME soak.short COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/bench/soak/soak.py
         --seconds 30 --build-dir ${CMAKE_BINARY_DIR})
set_tests_properties(soak.short PROPERTIES LABELS "soak;nosan" TIMEOUT 120)
# HTTP/2 flood client (tests/h2flood/h2flood.c, nghttp2 + OpenSSL) used by
# tests/http/test_h2flood.py, which skips when it was not built.
pkg_check_modules(NGHTTP2 IMPORTED_TARGET libnghttp2)
if(NGHTTP2_FOUND)
  add_executable(h2flood h2flood/h2flood.c)
  target_link_libraries(h2flood PRIVATE PkgConfig::NGHTTP2 PkgConfig::OPENSSL)
endif()

# Flood and timing tests measure the server, not sanitizer overhead.
if(TEST http.test_h2flood)
  set_tests_properties(http.test_h2flood PROPERTIES LABELS "http;nosan")
endif()

# fuzz_http1 drives a live server thread and checks it keeps answering within
# seconds; run the fuzz targets alone, not beside the cluster and soak tests.
if(TEST fuzz.all)
  set_tests_properties(fuzz.all PROPERTIES RUN_SERIAL TRUE)
endif()
# Handlers that wait on PostgreSQL (test_waiting.Database: pg_sleep through
# the I/O pool, bounded by --db-pool).
add_test(NAME http.waiting_pg
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/db/with-postgres.sh
                 ${Python3_EXECUTABLE} -m unittest -v test_waiting.Database
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/http)
set_tests_properties(http.waiting_pg PROPERTIES TIMEOUT 300 LABELS "http;pg"
  ENVIRONMENT "DK_BUILD_DIR=${CMAKE_BINARY_DIR};DK_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
# OpenAPI: `donkey generate openapi` passes `redocly lint` (recommended rules,
# no errors); @redocly/cli pinned by tests/openapi/package-lock.json (npm ci).
if(TARGET donkey_cli)
  add_test(NAME openapi.lint COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/openapi/run.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(openapi.lint PROPERTIES TIMEOUT 300 LABELS "openapi;nosan")
endif()
