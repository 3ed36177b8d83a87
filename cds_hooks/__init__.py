"""CDS Hooks 2.0 service: salvage-regimen cards at order-select, order-sign and patient-view."""
