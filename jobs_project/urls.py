from django.contrib import admin
from django.urls import include, path

from results import operations

admin.site.site_header = "Jobs"
admin.site.site_title = "Jobs"
admin.site.index_title = "Jobs administration"

urlpatterns = [
    path("", operations.landing),
    path("api/", include("results.api_urls")),
    # Before the admin's own URLs: its catch-all would answer these paths with a 404.
    path("admin/operations/", include(operations)),
    path("admin/", admin.site.urls),
]
