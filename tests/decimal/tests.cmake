kcqrs_test(decimal_test
  SOURCES decimal/decimal_test.cc
  LIBS kcqrs_decimal)

# decimal/ against Python's decimal module and exact fractions, on 20,000
# generated cases (decimal_oracle.py says what is checked).
add_executable(decimal_calc decimal/decimal_calc.cc)
target_link_libraries(decimal_calc PRIVATE kcqrs_decimal)
add_test(NAME decimal_oracle_test
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/decimal/decimal_oracle.py
                 $<TARGET_FILE:decimal_calc> 20000)
set_tests_properties(decimal_oracle_test PROPERTIES LABELS unit TIMEOUT 300)
