"""Views shared by the app, the CLI and the HTML report: plotly figures and PIL images."""
