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
