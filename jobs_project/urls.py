from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Jobs"
admin.site.site_title = "Jobs"
admin.site.index_title = "Jobs administration"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("api/", include("results.api_urls")),
    path("admin/", admin.site.urls),
]
