{#- Locally: schemas are named after the folder (staging, marts, seeds) so the
    exported marts and ad-hoc queries do not depend on the target's schema.
    On Athena: <target schema>_<folder>, one Glue database per layer and environment. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}
    {{ target.schema }}
  {%- elif target.type == 'athena' -%}
    {{ target.schema }}_{{ custom_schema_name | trim }}
  {%- else -%}
    {{ custom_schema_name | trim }}
  {%- endif -%}
{%- endmacro %}
