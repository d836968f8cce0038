"""The search page at `/`: its files over HTTP, and in a real headless Chromium (Debian's
`chromium` and `chromium-driver`, driven by Selenium) against a live server: a query run
from the keyboard, highlighted spans in the DOM, the "why" view, a phone-width layout, and
a screenshot saved under the test's tmp dir."""

from __future__ import annotations

import shutil
import urllib.request

import pytest

pytest.importorskip("fastapi")
from latesearch.serving import RunningServer, SearchService  # noqa: E402
from latesearch.serving.page import FILES  # noqa: E402

QUERY = "late interaction search"


@pytest.fixture(scope="module")
def server(index):
    with RunningServer(SearchService(index), port=0, quiet=True) as running:
        yield running


def fetch(url: str) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def test_the_page_and_its_files_are_served(server):
    status, headers, body = fetch(server.url + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<form id="search-form"' in body and b"/page/search.js" in body
    assert "default-src 'self'" in headers["content-security-policy"]
    for name, media in FILES.items():
        status, headers, body = fetch(f"{server.url}/page/{name}")
        assert status == 200 and headers["content-type"] == media and body
        assert b"http://" not in body and b"https://" not in body  # nothing from elsewhere
    with pytest.raises(urllib.error.HTTPError) as err:
        fetch(server.url + "/page/../app.py")
    assert err.value.code == 404
    schema = fetch(server.url + "/openapi.json")[2]
    assert b'"/page/' not in schema


def chromium_driver(width: int, height: int):
    """A headless Chromium driven by Selenium, or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install 'latesearch[test]')")  # fmt: skip
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver_path))


def test_a_search_in_a_real_browser(server, index, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import Select, WebDriverWait

    expected = index.search(QUERY, k=4, mode="exact", explain=True, return_metadata=True)
    driver = chromium_driver(390, 844)  # a phone's width
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(server.url + "/")
        wait.until(lambda d: len(Select(d.find_element(By.ID, "mode")).options) > 0)
        assert driver.switch_to.active_element.get_attribute("id") == "query"  # autofocus
        k = driver.find_element(By.ID, "k")
        k.clear()
        k.send_keys("4")
        Select(driver.find_element(By.ID, "mode")).select_by_value("exact")
        query = driver.find_element(By.ID, "query")
        query.send_keys(QUERY, Keys.ENTER)  # submitted from the keyboard
        wait.until(ready.presence_of_all_elements_located((By.CSS_SELECTOR, "li.hit")))
        hits = driver.find_elements(By.CSS_SELECTOR, "li.hit")
        assert [h.get_attribute("data-doc-id") for h in hits] == [h.doc_id for h in expected]
        for element, hit in zip(hits, expected, strict=True):
            marks = [m.text for m in element.find_elements(By.CSS_SELECTOR, "p.text mark")]
            assert marks == [hit.text[h.start : h.end] for h in hit.highlights
                             if h.field == "text"]  # fmt: skip
            assert element.find_element(By.CSS_SELECTOR, "p.text").text == hit.text.strip()
        assert any(h.find_elements(By.TAG_NAME, "mark") for h in hits)
        # keyboard: down from the query box to the first hit, Enter opens its "why" view
        query.send_keys(Keys.ARROW_DOWN)
        assert driver.switch_to.active_element == hits[0]
        hits[0].send_keys(Keys.ENTER)
        table = wait.until(lambda d: hits[0].find_element(By.CSS_SELECTOR, "table.why"))
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == len(expected[0].explanation.matches)
        first_text = next(m for m in expected[0].explanation.matches if m.kind == "text")
        row = table.find_element(By.CSS_SELECTOR, "tr.match-text")
        assert row.find_elements(By.TAG_NAME, "td")[0].text == first_text.query_token
        # readable at a phone's width: nothing wider than the window
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        screenshot = tmp_path / "search-page.png"
        assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 1000
        # a bad filter is refused on the page, naming the problem
        driver.find_element(By.ID, "filter").send_keys("{not json")
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        status = driver.find_element(By.ID, "status")
        wait.until(lambda d: "not JSON" in status.text)
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def two_indexes(index, tmp_path_factory, tiny_colbert):
    """A server of two indexes and no default one (GET /health is a 404 there)."""
    from latesearch import Index
    from latesearch.serving.catalog import Catalog

    folder = tmp_path_factory.mktemp("page-code")
    rows = [{"id": f"c{i}", "text": f"def late_{i}(x): return interaction search {i}"}
            for i in range(8)]  # fmt: skip
    code = Index.build(rows, folder / "code", tiny_colbert, progress=False)
    catalog = Catalog(metrics=False)
    catalog.add("docs", index)
    catalog.add("code", code)
    with RunningServer(catalog, port=0, quiet=True) as running:
        yield running, code


def shown(driver) -> list[str]:
    """The ids of the hits on the page."""
    from selenium.webdriver.common.by import By

    return [h.get_attribute("data-doc-id") for h in driver.find_elements(By.CSS_SELECTOR, "li.hit")]


def test_the_page_searches_the_index_chosen(two_indexes, index):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    server, code = two_indexes
    with pytest.raises(urllib.error.HTTPError) as err:  # no default index
        fetch(server.url + "/health")
    assert err.value.code == 404
    driver = chromium_driver(1000, 800)
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(server.url + "/")
        choice = driver.find_element(By.ID, "index")
        wait.until(lambda d: len(Select(choice).options) == 2)
        assert choice.is_displayed() and driver.find_element(By.ID, "status").text == ""
        assert [o.text for o in Select(choice).options] == ["code", "docs"]
        for name, served in [("code", code), ("docs", index)]:
            Select(choice).select_by_value(name)
            wait.until(lambda d, n=name: n in d.find_element(By.ID, "index-info").text)
            Select(driver.find_element(By.ID, "mode")).select_by_value("exact")
            k = driver.find_element(By.ID, "k")
            k.clear()
            k.send_keys("3")
            query = driver.find_element(By.ID, "query")
            query.clear()
            query.send_keys(QUERY, Keys.ENTER)
            expected = [h.doc_id for h in served.search(QUERY, k=3, mode="exact")]
            wait.until(lambda d, e=expected: shown(d) == e)
            assert f"index={name}" in driver.current_url
        driver.get(server.url + "/?q=late+interaction&index=code&k=2&mode=exact")  # a link
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "li.hit")) == 2)
        hits = driver.find_elements(By.CSS_SELECTOR, "li.hit")
        assert all(h.get_attribute("data-doc-id").startswith("c") for h in hits)
    finally:
        driver.quit()


def test_a_server_of_one_index_shows_no_selector(server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium_driver(800, 600)
    try:
        driver.get(server.url + "/")
        WebDriverWait(driver, 30).until(
            lambda d: "documents" in d.find_element(By.ID, "index-info").text
        )
        assert not driver.find_element(By.ID, "index").is_displayed()
    finally:
        driver.quit()
