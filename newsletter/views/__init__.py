"""Views, one module per audience: readers (subscription links), archive (public issues), health."""
