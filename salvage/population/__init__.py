"""Population mode: many patients at once. A FHIR Bulk Data `$export` client (export), cohort
analytics written as Parquet, CSV and an offline HTML report (cohort, report), and PySpark for
populations beyond one machine (spark, an optional extra). Every patient goes through the same
per-patient entry point of salvage.service."""
