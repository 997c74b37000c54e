{#
  The columns together identify a row: no two rows share their values.
  data_tests: [{unique_combination: {arguments: {columns: [a, b]}}}]
#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
