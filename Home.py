"""faceguard's app: `streamlit run Home.py`. This file is the router and the frame around
every page (page config, navigation, the rollback banner); each page lives in pages/."""

import streamlit as st

import app_support as app

st.set_page_config(page_title="faceguard", page_icon=":material/shield_person:", layout="wide")

pages = {
    "": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/blur.py", title="Blur", icon=":material/blur_on:"),
    ],
    "Quality": [
        st.Page("pages/review.py", title="Review", icon=":material/rule:"),
        st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
        st.Page("pages/ab_analysis.py", title="A/B analysis", icon=":material/compare_arrows:"),
    ],
    "Operations": [
        st.Page("pages/models.py", title="Models", icon=":material/deployed_code:"),
        st.Page("pages/system_status.py", title="System status", icon=":material/vital_signs:"),
    ],
}
page = st.navigation(pages, position="top")

settings = app.settings()
app.show_flash()
app.rollback_banner(settings)
page.run()
