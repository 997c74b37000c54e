{# numerator ÷ denominator rounded to `digits` decimals; null when the denominator is 0 or null. #}
{% macro safe_ratio(numerator, denominator, digits=4) -%}
    round(({{ numerator }})::numeric / nullif({{ denominator }}, 0), {{ digits }})
{%- endmacro %}
