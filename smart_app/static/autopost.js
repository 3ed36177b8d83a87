// Submits the authorize form at once (Epic: authorize by POST for EHR launch). Without scripts
// the Continue button does the same.
document.getElementById("authorize-post").submit();
