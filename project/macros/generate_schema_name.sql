{#
  PulseMetrics' schemas have fixed names (staging, intermediate, analytics,
  reference), as the roles in warehouse/ and the queries of its users expect:
  a custom schema is used as it is, not appended to the target's schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
