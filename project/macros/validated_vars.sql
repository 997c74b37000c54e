{#
  The vars PulseMetrics pastes into SQL are checked first: a value that is not
  what the var means stops the build with an error naming the var, and never
  becomes SQL of its own (`--vars '{reader_window_days: "30 or true"}'` is
  refused, not turned into `... or true`).
#}

{# A whole number between `low` and `high`, as a number. #}
{% macro whole_number_var(name, low, high) %}
    {% set value = var(name) %}
    {% set text = value | string | trim %}
    {% if not modules.re.fullmatch('[0-9]{1,9}', text) or (text | int) < low or (text | int) > high %}
        {{ exceptions.raise_compiler_error("var `" ~ name ~ "` is `" ~ value ~ "`: it must be a whole number from " ~ low ~ " to " ~ high) }}
    {% endif %}
    {{ return(text | int) }}
{% endmacro %}

{# A day written YYYY-MM-DD, or none when the var is not set. #}
{% macro date_var(name) %}
    {% set value = var(name, none) %}
    {% if value is none %}
        {{ return(none) }}
    {% endif %}
    {% set text = value | string | trim %}
    {% if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) %}
        {{ exceptions.raise_compiler_error("var `" ~ name ~ "` is `" ~ value ~ "`: it must be a day written YYYY-MM-DD") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}

{# An IANA time zone name (Europe/Berlin, UTC, Etc/GMT+3). #}
{% macro timezone_var() %}
    {% set value = var('timezone') | string | trim %}
    {% if not modules.re.fullmatch('[A-Za-z][A-Za-z0-9_+/-]{0,63}', value) %}
        {{ exceptions.raise_compiler_error("var `timezone` is `" ~ value ~ "`: it must be a time zone name such as UTC or Europe/Berlin") }}
    {% endif %}
    {{ return(value) }}
{% endmacro %}
