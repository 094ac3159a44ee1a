{#- Cross-database helpers for the two targets (DuckDB locally, Athena/Trino on AWS).
    Written here because hub packages cannot be installed; each dispatches on the
    adapter, with the DuckDB form as the default. -#}

{% macro safe_divide(numerator, denominator) -%}
  {{ return(adapter.dispatch('safe_divide', 'finks')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__safe_divide(numerator, denominator) -%}
  (cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0))
{%- endmacro %}

{#- Trino divides integers as integers; the casts above already prevent it, the
    explicit form keeps the intent visible. -#}
{% macro athena__safe_divide(numerator, denominator) -%}
  (cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0e0))
{%- endmacro %}


{% macro try_to_double(expression) -%}
  {{ return(adapter.dispatch('try_to_double', 'finks')(expression)) }}
{%- endmacro %}

{% macro default__try_to_double(expression) -%}
  try_cast(trim({{ expression }}) as double)
{%- endmacro %}

{% macro athena__try_to_double(expression) -%}
  try(cast(trim({{ expression }}) as double))
{%- endmacro %}


{#- Money: rounded to cents, as a double so both engines write the same Parquet type. -#}
{% macro money(expression) -%}
  {{ return(adapter.dispatch('money', 'finks')(expression)) }}
{%- endmacro %}

{% macro default__money(expression) -%}
  round(cast({{ expression }} as double), 2)
{%- endmacro %}

{% macro athena__money(expression) -%}
  round(cast({{ expression }} as double), 2)
{%- endmacro %}


{% macro to_date(expression) -%}
  {{ return(adapter.dispatch('to_date', 'finks')(expression)) }}
{%- endmacro %}

{% macro default__to_date(expression) -%}
  cast({{ expression }} as date)
{%- endmacro %}

{#- Glue partition columns are strings; Trino's date() parses them and casts timestamps. -#}
{% macro athena__to_date(expression) -%}
  date({{ expression }})
{%- endmacro %}


{#- The silver column called "date": a keyword in Trino, so always quoted. -#}
{% macro date_col(alias=none) -%}
  {%- if alias -%}{{ alias }}.{%- endif -%}"date"
{%- endmacro %}
