{# An amount in cents (as payment processors report it) as a numeric amount. #}
{% macro cents_to_amount(cents) -%}
    ({{ cents }} / 100.0)::numeric(14, 2)
{%- endmacro %}
