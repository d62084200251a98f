"""The web page in a real headless Chromium: what it shows equals what the API answers.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); without them
these tests fail, they are never skipped.
"""

import shutil

import httpx
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from serving_models import build_state, raw

from adljax.serving import export, load
from adljax.serving.service import create_app, running

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("the browser tests need `apt-get install chromium chromium-driver`")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1100,1000")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _open(browser, url):
    browser.get(url)
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready === 'true'")
    )


def _wait_for_answer(browser):
    return WebDriverWait(browser, 60).until(lambda d: d.execute_script("return window.adljaxLast"))


def test_a_drawn_digit_shows_the_apis_top_class(browser, exported):
    artifact = load(exported("cnn_digits")[2])
    with running(create_app(artifact, max_batch_size=8)) as url:
        _open(browser, url)
        pad = browser.find_element(By.ID, "pad")
        stroke = ActionChains(browser).move_to_element_with_offset(pad, -20, -100)
        stroke.click_and_hold().move_by_offset(10, 80).move_by_offset(10, 80).release().perform()
        last = _wait_for_answer(browser)
        pixels = np.asarray(last["inputs"])
        assert pixels.shape == (1, 8, 8, 1)
        assert pixels.max() > 128 and (pixels == 0).mean() > 0.5  # a stroke on black
        assert pixels[0, 1:7, 3:5].mean() > pixels[0, :, 6:].mean()  # where the stroke went
        answer = httpx.post(f"{url}/classify", json={"inputs": pixels.tolist()}).json()
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "top-class").text != "–")
        assert browser.find_element(By.ID, "top-class").text == answer["predictions"][0]["class"]
        bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar")
        assert len(bars) == 10


@pytest.fixture(scope="module")
def with_examples(tmp_path_factory):
    """``family -> artifact`` exported with a few test inputs for the page to offer."""

    def make(family: str):
        state, data = build_state(family)
        path = tmp_path_factory.mktemp(family) / "export"
        export(state, path, info=data.info, platforms=("cpu",), examples=raw(data, 3))
        return load(path)

    return make


def test_the_detection_page_draws_every_box_the_api_returns(browser, with_examples):
    artifact = with_examples("detector_shapes")
    with running(create_app(artifact, max_batch_size=2)) as url:
        _open(browser, url)
        browser.find_elements(By.CSS_SELECTOR, "#examples button")[1].click()
        last = _wait_for_answer(browser)
        np.testing.assert_array_equal(last["inputs"][0], artifact.examples[1])
        body = {"inputs": [artifact.examples[1].tolist()], "min_score": 0.3}
        expected = len(httpx.post(f"{url}/detect", json=body, timeout=60).json()["detections"][0])
        assert expected > 0
        WebDriverWait(browser, 10).until(
            lambda d: d.find_element(By.ID, "box-count").text == str(expected)
        )
        assert len(browser.find_elements(By.CSS_SELECTOR, "#detection-list li")) == expected


def test_the_house_price_form_shows_the_apis_value(browser, exported):
    path = exported("linear_housing")[2]
    with running(create_app(load(path), max_batch_size=2)) as url:
        _open(browser, url)
        field = browser.find_element(By.ID, "feature-0")
        field.clear()
        field.send_keys("150")
        browser.find_element(By.ID, "predict").click()
        last = _wait_for_answer(browser)
        assert last["inputs"][0][0] == 150
        answer = httpx.post(f"{url}/regress", json={"inputs": last["inputs"]}).json()
        value = answer["predictions"][0]["value"][0]
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "prediction").text != "–")
        assert float(browser.find_element(By.ID, "prediction").text) == pytest.approx(
            value, abs=1e-3
        )


def test_the_gan_page_draws_its_samples(browser, exported):
    with running(create_app(load(exported("dcgan_digits")[2]), max_batch_size=16)) as url:
        _open(browser, url)
        WebDriverWait(browser, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#samples canvas")) == 16
        )
        browser.find_element(By.ID, "interpolate").click()
        WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.ID, "frame").get_attribute("width") != "300"
        )


def test_the_character_model_writes_the_requested_length(browser, exported):
    with running(create_app(load(exported("charlm")[2]))) as url:
        _open(browser, url)
        length = browser.find_element(By.ID, "length")
        length.clear()
        length.send_keys("45")
        browser.find_element(By.ID, "write").click()
        WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.ID, "generated").get_attribute("data-written") == "45"
        )
        assert browser.find_element(By.ID, "generated").text.startswith("def")


def test_the_docs_page_lists_every_endpoint(browser, exported):
    with running(create_app(load(exported("cnn_digits")[2]), warm_up=False)) as url:
        browser.get(f"{url}/docs")
        WebDriverWait(browser, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "section.endpoint")) >= 5
        )
        paths = {
            s.get_attribute("data-path")
            for s in browser.find_elements(By.CSS_SELECTOR, "section.endpoint")
        }
        assert {"/classify", "/embed", "/health", "/metadata", "/examples"} <= paths
